"""The 5 x 5 grid of 25 Gaussians (Srivastava et al. 2017, VEEGAN; Lin et al. 2018, PacGAN):
modes at (-4, -2, 0, 2, 4)^2, std 0.05, scored with the exact posterior
(harness/datasets/_mixture.py has the constants' sources and every score)."""
from harness.datasets._mixture import grid25
from harness.datasets._mixture_dataset import mixture_dataset

DATASET = mixture_dataset("grid25", "Grid of 25 Gaussians", grid25())
