"""`python -m data_prep.mat --root FILE --out DIR [...]`: same as `crossmodal datasets prepare mat` (any paired
.mat / .npz file or folder of .npy/.npz features -> a canonical dataset folder)."""

from data_prep import main

if __name__ == "__main__":
    raise SystemExit(main("mat"))
