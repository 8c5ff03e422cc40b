"""`python -m data_prep.coco --root DIR --out DIR [...]`: same as `crossmodal datasets prepare coco`."""

from data_prep import main

if __name__ == "__main__":
    raise SystemExit(main("coco"))
