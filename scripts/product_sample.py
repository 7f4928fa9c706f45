"""Write scikit-image's "coffee" photo (CC0: a cup on a saucer, one object on a plain table) for the demo.

Usage: python scripts/product_sample.py OUT_FOLDER
"""

import sys
from pathlib import Path

from PIL import Image
from skimage.data import coffee

if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(coffee()).save(out / "coffee.png")
    print(out / "coffee.png")
