"""Where a command runs: over SSH (paramiko) or on this machine (subprocess).
The engine holds a `Connection` and never knows which kind it is."""
