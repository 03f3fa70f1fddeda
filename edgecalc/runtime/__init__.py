"""The live cart runtime. numpy, OpenCV and one inference engine only: this package never imports torch."""
