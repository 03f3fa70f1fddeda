"""edgecalc: CS-AGnet calcification recognition in thyroid ultrasound, from training to the cart.

Subpackages, one per pipeline stage: ``data`` (phantom, data sets, the shared preprocessing),
``model`` (CS-AGnet / DS-AGnet), ``train``, ``eval``, ``calibration``, ``export`` and ``runtime``
(torch-free live inference). ``cli`` is the ``edgecalc`` command.
"""

__version__ = "0.1.0"
