"""Pages of the reward models (reward_models.py) and of C3PO (c3po.py)."""
