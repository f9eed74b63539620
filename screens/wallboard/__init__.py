"""The supervisor's wallboard: per queue live figures, agents by state, the chart of today."""
