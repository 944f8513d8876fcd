"""The ring of 8 Gaussians (Metz, Poole, Pfau, Sohl-Dickstein 2016, "Unrolled Generative
Adversarial Networks", Appendix A): 8 modes evenly on a circle of radius 2, std 0.02, scored with
the exact posterior (harness/datasets/_mixture.py has the constants' sources and every score)."""
from harness.datasets._mixture import ring8
from harness.datasets._mixture_dataset import mixture_dataset

DATASET = mixture_dataset("ring8", "Ring of 8 Gaussians", ring8())
