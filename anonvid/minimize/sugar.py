"""Spec sugar for detected regions: `faces(...)` and `people(...)`.

    faces(blur=sigma)     = blur(sigma)@face         people(blur=sigma)     = blur(sigma)@person
    faces(pixelate=b)     = pixelate(b)@face         people(pixelate=b)     = pixelate(b)@person
    faces(black)          = black@face               people(black)          = black@person

The parser expands the sugar, so a pipeline prints in its canonical form (`ts(2)|faces(blur=4)` prints as
`ts(2)|blur(4)@face`). The masks come from `anonvid.regions` (`apply_with_detection`) or from the caller.
"""
from __future__ import annotations

from typing import Any

from anonvid.minimize.registry import REGION_SUGAR, get_op

# keyword form -> the op it stands for; bare-word forms name an op without parameters.
KEYWORD_FORMS = {"blur": "sigma", "pixelate": "block"}
WORD_FORMS = ("black",)


def accepted_forms(name: str) -> str:
    """The accepted spellings, e.g. `faces(blur=sigma), faces(pixelate=block), faces(black)`."""
    forms = [f"{name}({op}={param})" for op, param in KEYWORD_FORMS.items()] + [f"{name}({w})" for w in WORD_FORMS]
    return ", ".join(forms)


def expand(name: str, args: list[str], kwargs: dict[str, str]) -> tuple[str, dict[str, Any], str]:
    """Expands one sugar call into `(op name, bound params, region)`.

    Args:
      name: a key of `REGION_SUGAR` ("faces" or "people").
      args, kwargs: the call's positional and keyword tokens.

    Raises:
      ValueError: anything but exactly one accepted form, or a bad value; the message lists the forms.
    """
    region = REGION_SUGAR[name]
    written = ", ".join(list(args) + [f"{k}={v}" for k, v in kwargs.items()])
    hint = f"accepted forms: {accepted_forms(name)}"
    if len(args) + len(kwargs) != 1:
        raise ValueError(f"{name}({written}) takes exactly one argument saying how to hide each "
                         f"{region}; {hint}")
    if args:
        if args[0] not in WORD_FORMS:
            raise ValueError(f"{name}({written}): unknown form {args[0]!r}; {hint}")
        return args[0], {}, region
    (op_name, value), = kwargs.items()
    if op_name not in KEYWORD_FORMS:
        raise ValueError(f"{name}({written}): unknown form {op_name!r}; {hint}")
    try:
        params = get_op(op_name).bind([value])
    except ValueError as err:
        raise ValueError(f"{name}({written}): {err}; {hint}") from None
    return op_name, params, region
