"""Text normalisation shared by every loader, in Python and as DuckDB macros.

Purposes (项目名称) and document numbers (文号) are written by hand: full- or half-width
brackets, stray spaces, full-width digits. They are compared through a *key*: the same function
in Python (notices, small inputs) and in SQL (ledgers, millions of rows), built from the same
translation table so the two cannot drift apart (tests/test_text.py checks they agree).
"""
from __future__ import annotations

import codecs
import re

# Full-width / variant characters and the ASCII they stand for. Brackets of every shape become
# round brackets in keys; 文号 brackets become 〔〕 in document numbers.
_FULL = "０１２３４５６７８９（）［］【】〔〕﹝﹞｛｝〈〉《》，．：－[]"
_HALF = "0123456789()()()()(){}()(),.:-()"
assert len(_FULL) == len(_HALF)
_KEY_TABLE = str.maketrans(_FULL, _HALF)
_DIGITS = str.maketrans(_FULL[:10], _HALF[:10])
_SPACE = re.compile(r"[\s\u3000\u00a0]+")

_DOC_OPEN = "﹝〔[［(（【"
_DOC_CLOSE = "﹞〕]］)）】"
_DOC_NO = re.compile(
    r"([\u4e00-\u9fff]{1,12})\s*[" + re.escape(_DOC_OPEN) + r"]\s*((?:19|20)\d{2})\s*["
    + re.escape(_DOC_CLOSE) + r"]\s*(\d{1,4})\s*号"
)


# Words that end a sentence's lead-in before a document number: '按照财综〔2024〕15号' -> '财综'.
_LEAD_IN = re.compile(r"^.*(按照|根据|依据|执行|参照|关于|印发|下达|转发|详见|见|和|及|与|的|由|经)")


def _doc(m: re.Match) -> str:
    prefix = _LEAD_IN.sub("", m.group(1)) or m.group(1)
    return f"{prefix}〔{m.group(2)}〕{int(m.group(3))}号"  # 〔2024〕02号 is 〔2024〕2号


def purpose_key(text: str | None) -> str | None:
    """Key under which a purpose name is compared: '2024年 租赁补贴（中央直达）' -> '2024年租赁补贴(中央直达)'."""
    if text is None:
        return None
    return _SPACE.sub("", text.translate(_KEY_TABLE)).lower()


def doc_no(text: str | None) -> str | None:
    """Canonical document number: '克区财综[2024]2号' -> '克区财综〔2024〕2号'; None if none is found."""
    if not text:
        return None
    m = _DOC_NO.search(_SPACE.sub("", text.translate(_DIGITS)))
    if not m:
        return None
    return _doc(m)


def find_doc_nos(text: str) -> list[str]:
    """Every document number in a passage, canonical, in order of appearance, without repeats."""
    seen: list[str] = []
    for m in _DOC_NO.finditer(_SPACE.sub("", text.translate(_DIGITS))):
        no = _doc(m)
        if no not in seen:
            seen.append(no)
    return seen


def decode_text(raw: bytes) -> tuple[str, str] | None:
    """A small text file's text and encoding, as Windows programs save one: by its BOM (UTF-8,
    UTF-16), else UTF-8, else GB18030 (which GBK is a part of); None when neither reads it, or
    what it reads holds NUL characters (a binary file)."""
    text, encoding = None, None
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                      (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            try:
                text, encoding = raw.decode(name), name
            except UnicodeDecodeError:
                pass
            break
    if text is None:
        for name in ("utf-8", "gb18030"):
            try:
                text, encoding = raw.decode(name), name
                break
            except UnicodeDecodeError:
                continue
    if text is None or "\x00" in text:
        return None
    return text.lstrip("\ufeff"), encoding


def install_macros(con) -> None:
    """Create the SQL twins of purpose_key / doc_no_key in a DuckDB connection."""
    full = _FULL.replace("'", "''")
    half = _HALF.replace("'", "''")
    con.execute(
        f"""
        create or replace macro purpose_key(s) as
            lower(regexp_replace(translate(s, '{full}', '{half}'), '[\\s\\x{{3000}}\\x{{00a0}}]+', '', 'g'))
        """
    )
    # Document numbers in ledgers are short and usually already canonical; normalise what varies
    # in practice, as doc_no does: brackets, spaces, full-width digits, a number's leading zeros
    # (〔2024〕02号), and text after the 号.
    digits = _FULL[:10]
    con.execute(
        f"""
        create or replace macro doc_no_key(s) as
            regexp_replace(
                regexp_replace(
                    regexp_replace(
                        regexp_replace(translate(s, '{digits}', '0123456789'), '[\\s\\x{{3000}}]+', '', 'g'),
                        '[﹝〔\\[［(（【]((?:19|20)\\d{{2}})[﹞〕\\]］)）】]', '〔\\1〕', 'g'),
                    '〔((?:19|20)\\d{{2}})〕0+(\\d)', '〔\\1〕\\2', 'g'),
                '^(.*?〔(?:19|20)\\d{{2}}〕\\d{{1,4}}号).*$', '\\1')
        """
    )
