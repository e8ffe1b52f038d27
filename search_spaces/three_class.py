"""Three classes - normal / bacterial / viral pneumonia with the binary architecture family.

The seed network with a 3-logit softmax head on the default recipe (augment=medium, batch norm
after every convolution), with and without a 5th conv block (more receptive field for the harder
bacterial-vs-viral call), each with the three class-balance choices (bacteria outnumber virus
~2:1 in train, normal and virus ~1:1): none, inverse-frequency loss weights, a balanced sampler.
6 configs. ASHA on METRIC (study/names.py: balanced accuracy on the stress validation, which
for 3 classes is the mean of the three recalls): grace 4 epochs, factor 2.
"""
from ray import tune

from study.tune.space import Asha, SearchSpace

SPACE = SearchSpace(
    name="three_class",
    question="3-class: normal vs bacterial vs viral pneumonia",
    doc=__doc__,
    fixed={"num_classes": 3},
    searched={
        "extra_layers": tune.grid_search([(), ("conv",)]),
        "class_balance": tune.grid_search(["none", "weights", "sampler"]),
    },
    num_samples=1,
    max_epochs=12,
    asha=Asha(grace_period=4, reduction_factor=2),
    answer="factors",
)
