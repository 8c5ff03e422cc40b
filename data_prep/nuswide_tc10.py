"""`python -m data_prep.nuswide_tc10 --root DIR --out DIR [...]`: same as `crossmodal datasets prepare nuswide-tc10`."""

from data_prep import main

if __name__ == "__main__":
    raise SystemExit(main("nuswide-tc10"))
