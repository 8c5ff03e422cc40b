"""`python -m data_prep.iaprtc12 --root DIR --out DIR [...]`: same as `crossmodal datasets prepare iaprtc12`."""

from data_prep import main

if __name__ == "__main__":
    raise SystemExit(main("iaprtc12"))
