"""The agent's desk: state controls, the screen pop, the work order panel, my open orders."""
