"""Which pixels are the subject: subject.py (alpha, U²-Net-p, registry mask models, GrabCut, clean-up)."""
