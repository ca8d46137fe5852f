"""One ignore file (``.gitignore`` and its kin) as git applies it, in time linear in the paths.

pathspec turns each pattern into a regular expression and tries every one against every path:
thousands of patterns cost seconds over a project, and a pattern such as ``*a*a*a*a*a*b``
backtracks exponentially on a long name (over 100 s for one file). Here the common shapes are
looked up instead of tried: a plain name (``cache``, ``build/``) by the path's components, a
``*.ext`` pattern by the components' endings; a pattern with several ``*`` in one component is
matched by a linear glob matcher; only the other shapes (``dir/*.o``, ``[abc]``) run their
regular expression. Which match wins is pathspec's ``GitIgnoreSpec`` rule.
"""

from __future__ import annotations

import re
import warnings
from typing import Callable

_DIR = "ps_d"  # pathspec's group: the pattern matched a parent directory of the path

Matcher = Callable[[str], "tuple[bool, bool]"]  # path -> (matched, matched as a parent directory)


class IgnoreFile:
    """The patterns of one ignore file: ``check(path)`` -> (ignored?, line index) like
    ``pathspec.GitIgnoreSpec.check_file`` (None, None when no pattern matches); a directory is
    given with a trailing ``/``."""

    def __init__(self, lines: list[str]) -> None:
        from pathspec.patterns.gitwildmatch import GitWildMatchPattern

        self.ignores: dict[int, bool] = {}  # line index -> False for a negation (``!pattern``)
        self._names: dict[str, list[tuple[int, bool]]] = {}  # name -> [(index, directories only)]
        self._endings: dict[str, list[tuple[int, bool]]] = {}  # ``*.ext`` -> ".ext" -> [...]
        self._others: list[tuple[int, Matcher]] = []
        self._anchored: dict[str, list[tuple[int, Matcher]]] = {}  # first component -> patterns under it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            for i, line in enumerate(lines):
                regex, include = GitWildMatchPattern.pattern_to_regex(line)
                if regex is None or include is None:
                    continue
                self.ignores[i] = include
                shape = _shape(line)
                if shape is None:
                    top = _anchor(line)
                    target = self._others if top is None else self._anchored.setdefault(top, [])
                    target.append((i, _regex_match(re.compile(regex, re.S))))
                elif isinstance(shape[1], list):
                    self._others.append((i, _linear_glob(shape[1], shape[2])))
                else:
                    table = self._names if shape[0] == "name" else self._endings
                    table.setdefault(shape[1], []).append((i, shape[2]))

    def check(self, path: str) -> tuple[bool | None, int | None]:
        matches: dict[int, bool] = {}  # index -> matched as a parent directory
        if self._names or self._endings:
            names = path.split("/")
            trailing = names[-1] == ""
            if trailing:
                names.pop()
            # Deepest component first: a pattern's match is its deepest one, as pathspec's
            # greedy regex finds it.
            for k in range(len(names) - 1, -1, -1):
                parent = k < len(names) - 1 or trailing
                name = names[k]
                for index, dir_only in self._names.get(name, ()):
                    if index not in matches and (parent or not dir_only):
                        matches[index] = parent
                if self._endings:
                    for j in range(len(name)):
                        for index, dir_only in self._endings.get(name[j:], ()):
                            if index not in matches and (parent or not dir_only):
                                matches[index] = parent
        for index, match in (*self._others, *self._anchored.get(path.split("/", 1)[0], ())):
            matched, as_dir = match(path)
            if matched:
                matches[index] = as_dir
        return self._decide(matches)

    def _decide(self, matches: dict[int, bool]) -> tuple[bool | None, int | None]:
        """GitIgnoreSpec's rule: the last pattern that matches the path itself wins; only when
        none does, the last one that matches a parent directory."""
        if not matches:
            return None, None
        own = [i for i, as_dir in matches.items() if not as_dir]
        index = max(own) if own else max(matches)
        return self.ignores[index], index


def _anchor(line: str) -> str | None:
    """The literal first component a pattern with a ``/`` inside is anchored to (``build/*.o``:
    ``build``), else None: only paths under it need its expression."""
    text = line.rstrip(" ").removeprefix("!").removeprefix("/")
    head, sep, rest = text.partition("/")
    if not sep or not rest.strip("/") or not head or any(c in head for c in "*?[\\") or line.startswith("\\"):
        return None
    return head


def _shape(line: str) -> tuple[str, str, bool] | tuple[str, list[str], bool] | None:
    """How a pattern can be matched without its regular expression: ("name", name, dir_only),
    ("ending", ending, dir_only), ("glob", parts between the stars, dir_only), or None."""
    text = line.rstrip(" ")  # trailing spaces are not part of a pattern (unescaped)
    if text.startswith("!"):
        text = text[1:]
    dir_only = text.endswith("/")
    body = text[:-1] if dir_only else text
    if not body or "/" in body or "\\" in body or "[" in body or body.startswith("#"):
        return None
    stars = body.count("*")
    if stars == 0 and "?" not in body:
        return "name", body, dir_only
    if stars == 1 and body.startswith("*") and "?" not in body and len(body) > 1:
        return "ending", body[1:], dir_only
    if stars >= 2 and body.strip("*"):
        return "glob", re.sub(r"\*+", "*", body).split("*"), dir_only
    return None


def _regex_match(compiled: re.Pattern[str]) -> Callable[[str], tuple[bool, bool]]:
    def match(path: str) -> tuple[bool, bool]:
        m = compiled.search(path)  # as pathspec does: some of its expressions are not anchored
        return (False, False) if m is None else (True, bool(m.groupdict().get(_DIR)))
    return match


def _linear_glob(parts: list[str], dir_only: bool) -> Matcher:
    """A pattern with several ``*`` in one component: it matches a whole component of the path
    at any depth, checked by a linear glob match (a regular expression would backtrack)."""

    def match(path: str) -> tuple[bool, bool]:
        names = path.split("/")
        trailing = names[-1] == ""
        if trailing:
            names.pop()
        for k in range(len(names) - 1, -1, -1):  # the deepest match, as for every pattern
            parent = k < len(names) - 1 or trailing
            if (parent or not dir_only) and _glob(parts, names[k]):
                return True, parent
        return False, False
    return match


def _glob(parts: list[str], name: str) -> bool:
    """Does ``name`` match ``parts[0]*parts[1]*...*parts[-1]`` (``?`` any one character)? Each
    middle part at its first fit: the classic linear wildcard match, no backtracking."""
    first, *middle, last = parts
    if len(name) < len(first) + len(last) or not _fits(first, name, 0) or not _fits(last, name, len(name) - len(last)):
        return False
    pos, end = len(first), len(name) - len(last)
    for part in middle:
        found = _find(part, name, pos, end)
        if found < 0:
            return False
        pos = found + len(part)
    return True


def _fits(part: str, name: str, at: int) -> bool:
    if at < 0 or at + len(part) > len(name):
        return False
    return all(c == "?" and name[at + i] != "/" or c == name[at + i] for i, c in enumerate(part))


def _find(part: str, name: str, start: int, end: int) -> int:
    if "?" not in part:
        return name.find(part, start, end)
    for at in range(start, end - len(part) + 1):
        if _fits(part, name, at):
            return at
    return -1
