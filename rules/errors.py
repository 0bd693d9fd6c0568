"""The error every catalog file's validation raises: the problems found, each named, in one
message (``invalid <source>:`` then one line per problem) and as ``.problems``."""


class InvalidRulesFile(ValueError):
    source = "rules file"  # what the message calls the file; each subclass names its own

    def __init__(self, problems: list[str], source: str | None = None):
        super().__init__(f"invalid {source or self.source}:\n  - " + "\n  - ".join(problems))
        self.problems = problems
