"""Reports render what analyzers return: terminal tables, live view, HTML, Markdown/JUnit."""
