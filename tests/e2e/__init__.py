"""End-to-end flows through the real `runbook` command: tmux for the TUI, sshd for hosts."""
