"""The one way a string travels from our code to Asterisk's AGI command parser.

Asterisk reads a FastAGI command as one line (``fgets`` into a 2048-byte buffer) and splits it
with ``parse_args`` in res_agi.c: spaces and tabs separate words, ``"`` toggles quoting, ``\\``
makes the next character literal. So a caller-controlled string (caller ID name, a recognised
transcript, digits) could add words, or with a newline start a second command, unless it is
quoted and escaped. Every word of every command passes through L{quote_argument}, which refuses
what cannot be made safe (CR, LF, NUL) and quotes the rest; L{format_command} builds the line
(the command name must be letters only, so data never stands in for a command) and checks the
length that keeps Asterisk from cutting a long line in two.

Two further parsers sit behind some commands:
  - ``EXEC app "a,b"`` hands its single argument to the application, which splits it on commas
    (``AST_STANDARD_APP_ARGS``: quotes, backslashes, parentheses and brackets are special).
    L{app_arguments} escapes each application argument for that parser.
  - ``SET VARIABLE`` with a name ending in ``)`` writes a dialplan function, ``GET VARIABLE``
    with such a name reads one, and ``GET FULL VARIABLE`` evaluates ``${...}``.
    L{check_variable_name} refuses function names unless the calling code asks for them; the
    session API offers no ``GET FULL VARIABLE`` at all.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "MAX_COMMAND_BYTES",
    "app_arguments",
    "check_variable_name",
    "format_command",
    "quote_argument",
]

# res_agi reads a command with fgets() into char buf[2048]: at most 2047 bytes including the
# newline. A longer line is cut there and the remainder runs as a second command.
MAX_COMMAND_BYTES = 2047

# Characters __ast_app_separate_args() treats specially when it splits an application's
# argument string on commas (with remove_chars set, as AST_STANDARD_APP_ARGS does).
_APP_ESCAPES = str.maketrans({c: "\\" + c for c in '\\",()[]'})

_VARIABLE_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def quote_argument(word: str) -> str:
    """
    Quote one word of an AGI command so that res_agi's parser returns exactly C{word}.

    @raise ValueError: C{word} holds CR, LF (either would end the command line early) or NUL
        (which would end the C string early).
    @raise TypeError: C{word} is not a C{str}; numbers are converted by the caller, on purpose.
    """
    if type(word) is not str:
        raise TypeError(f"AGI arguments must be str, not {type(word).__name__}")
    if "\n" in word or "\r" in word or "\0" in word:
        raise ValueError(f"AGI argument contains CR, LF or NUL: {word!r}")
    if "\\" in word:
        word = word.replace("\\", "\\\\")
    if '"' in word:
        word = word.replace('"', '\\"')
    return '"' + word + '"'


def format_command(verb: str, args: Iterable[str] = ()) -> bytes:
    """
    Build one AGI command line (UTF-8, newline-terminated): the command name, then C{args},
    every word quoted by L{quote_argument}.

    C{verb} is the command name, possibly of several words (C{"GET DATA"}); it must be ASCII
    letters and spaces, so that no data can ever take the place of a command.

    @raise ValueError: a bad command name, an argument that cannot be quoted (see
        L{quote_argument}) or encoded as UTF-8, or a line longer than L{MAX_COMMAND_BYTES}.
    """
    prefix = _VERBS.get(verb)
    if prefix is None:
        prefix = _verb_prefix(verb)
    line = " ".join([prefix, *[quote_argument(arg) for arg in args]]) + "\n"
    data = line.encode("utf-8")
    if len(data) > MAX_COMMAND_BYTES:
        raise ValueError(
            f"AGI command of {len(data)} bytes is longer than {MAX_COMMAND_BYTES}: "
            "Asterisk would run the excess as another command"
        )
    return data


# Command name -> its quoted words; bounded by the handful of names the code uses.
_VERBS: dict[str, str] = {}


def _verb_prefix(verb: str) -> str:
    names = verb.split(" ")
    if not all(name.isascii() and name.isalpha() for name in names):
        raise ValueError(f"not an AGI command name: {verb!r}")
    prefix = " ".join(quote_argument(name) for name in names)
    if len(_VERBS) < 256:
        _VERBS[verb] = prefix
    return prefix


def app_arguments(args: Iterable[str]) -> str:
    """
    Join application arguments for C{EXEC} so that the application sees exactly C{args}.

    Each argument has C{\\ " , ( ) [ ]} backslash-escaped; applications that parse their
    arguments with C{AST_STANDARD_APP_ARGS} (Dial, Playback, AudioSocket, Queue, MixMonitor,
    Read, ...) remove the backslashes again. Applications that read their data raw (C{Set},
    C{ExecIf}) would keep the backslashes: do not pass caller data to those.

    The result still passes through L{quote_argument} as one AGI word.
    """
    return ",".join([arg.translate(_APP_ESCAPES) for arg in args])


def check_variable_name(name: str, *, allow_function: bool = False) -> str:
    """
    Return C{name} if it is a plain channel variable name, else raise C{ValueError}.

    Plain names are ASCII letters, digits and underscores (leading C{_}/C{__} mark inherited
    variables). With C{allow_function=True} the name may also be a dialplan function call such
    as C{CALLERID(name)} or C{CDR(userfield)}; Asterisk writes (or reads) the function instead
    of a variable, so only code that names a known function should ask for it.
    """
    if not name:
        raise ValueError("empty channel variable name")
    if set(name) <= _VARIABLE_NAME_CHARS:
        return name
    if allow_function:
        function, paren, rest = name.partition("(")
        if (
            paren
            and function
            and set(function) <= _VARIABLE_NAME_CHARS
            and rest.endswith(")")
            and "\n" not in rest
            and "\r" not in rest
            and "\0" not in rest
        ):
            return name
    raise ValueError(
        f"not a plain channel variable name: {name!r}"
        + ("" if allow_function else " (dialplan functions need allow_function=True)")
    )
