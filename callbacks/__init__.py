"""Callbacks (virtual hold), everything of them in one folder: the policy (who may leave
which number, how often a customer is tried, what their phone shows), the number dialogue
with the waiting caller, the flow that connects agent and customer, the ARI telephony that
places them, and their Lua scripts in the routing state."""
