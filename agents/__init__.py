"""Reinforcement learners built on the rl_alphamaml meta-optimizer core."""
