"""The thin, torch-native training engine."""
