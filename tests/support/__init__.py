"""Test helpers shared by every suite (starting the emulator, trusting its CA)."""
