"""The ultrasound phantom of thyroid nodules with calcifications (numpy + OpenCV/SciPy, never torch).

Convolution image-formation model on a physical grid (mm), anatomy with confounders, nodule crops
as in the paper, full screen frames with scanner furniture, cine loops, and the default data set.
"""

from edgecalc.data.phantom.cine import generate_cine, write_cine
from edgecalc.data.phantom.config import PhantomConfig
from edgecalc.data.phantom.crops import PhantomSample, generate_crop
from edgecalc.data.phantom.dataset_writer import write_phantom_dataset
from edgecalc.data.phantom.frames import PhantomFrame, generate_frame
from edgecalc.data.phantom.visibility import calcification_visibility

__all__ = ["PhantomConfig", "PhantomSample", "PhantomFrame", "generate_crop", "generate_frame",
           "generate_cine", "write_cine", "write_phantom_dataset", "calcification_visibility"]
