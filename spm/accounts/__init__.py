"""People who sign in to the dashboard: local accounts, sessions, and the tokens the dashboard
server signs for them so the services know who is calling (``spm serve dashboard``)."""
