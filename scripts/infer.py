"""The inference script: ``python scripts/infer.py ARGS`` is ``medseg infer ARGS`` (see ``medseg infer --help``).

python scripts/infer.py --bundle bundles/luna16_segcaps --input scan.nii.gz dicom_folder/ --output masks/
"""

import sys

from medseg.cli import main

if __name__ == "__main__":
    sys.exit(main(["infer", *sys.argv[1:]]))
