"""`edgecalc bench`: latency, throughput, memory and accuracy of every backend x precision, in one run.

Each row runs in its own subprocess (so peak RSS and thread settings belong to that row alone) on the
same inputs; the PyTorch-eager float32 row is the reference every other row is divided by.
"""
