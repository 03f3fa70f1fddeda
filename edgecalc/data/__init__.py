"""Data: the ultrasound phantom, the data-set folder format and the preprocessing shared by training
and the runtime. numpy + OpenCV only (never torch), so the cart prepares a frame exactly as training did."""
