"""medseg: MONAI-based medical image segmentation.

The losses, networks, data pipelines and training workflows of SegCaps (LaLonde & Bagci 2018),
the FCN-32s family, U-Net and FC-DenseNet studies, on top of MONAI.
"""

__version__ = "0.1.0"
