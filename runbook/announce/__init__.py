"""Announcements: telling people someone is on it.

- `channels`: where a message goes (stdout, `file:PATH`, and the Slack,
  webhook and SMTP channels configured in channels.yaml); knows nothing of
  incidents.
- `notices`: the message drafted from the incident's playbook template, and
  every send journalled, delivered or not.
"""
