"""`python -m data_prep.mirflickr25k --root DIR --out DIR [...]`: same as `crossmodal datasets prepare mirflickr25k`."""

from data_prep import main

if __name__ == "__main__":
    raise SystemExit(main("mirflickr25k"))
