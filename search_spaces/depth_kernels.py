"""Q3.1 C - depth of existing layers and number of kernels, no added layers.

Filters per block (the "depth" of each conv layer) x kernel side per block, 4 blocks always:
  filters  (32,32,32,32) seed | (16,16,16,16) half: does the seed over-fit? |
           (64,64,64,64) double: does it under-fit? | (16,32,64,128) the usual widening pyramid
  kernels  (3,3,3,3) seed | (5,5,3,3) larger early kernels: opacities are blurry, wide structures
8 configs = 7 changes from the seed (the task asks for at least five). ASHA: grace 4, factor 2.
"""
from ray import tune

from study.tune.space import Asha, SearchSpace

SPACE = SearchSpace(
    name="depth_kernels",
    question="Q3.1 C: which change of filters per layer / kernel size improves accuracy",
    doc=__doc__,
    searched={
        "filters": tune.grid_search([(32, 32, 32, 32), (16, 16, 16, 16), (64, 64, 64, 64), (16, 32, 64, 128)]),
        "kernel_sizes": tune.grid_search([(3, 3, 3, 3), (5, 5, 3, 3)]),
    },
    num_samples=1,
    max_epochs=12,
    asha=Asha(grace_period=4, reduction_factor=2),
    answer="factors",
)
