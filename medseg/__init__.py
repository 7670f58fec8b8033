"""medseg: MONAI-based medical image segmentation.

The losses, networks, data pipelines and training workflows of SegCaps (LaLonde & Bagci 2018),
the FCN-32s family, U-Net and FC-DenseNet studies, on top of MONAI.
"""

import logging
import warnings

__version__ = "0.1.0"

# MONAI 1.6 instantiates its nvImageCodec DICOM reader inside every LoadImage and warns on machines
# without nvImageCodec/CUDA, although that reader is then never chosen; silence only that message.
warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader: nvImageCodec decoder plugin")
logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
