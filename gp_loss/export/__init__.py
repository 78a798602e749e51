"""Every export format of a found loss: standalone Python, TorchScript, torch.export, LaTeX, the verified bundle."""
