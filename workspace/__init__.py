"""The top app: home, global search, the sidebar and `{% may %}` rules, the demo data commands.
The one app that may read every other (import-linter's layers contract); nothing imports it."""
