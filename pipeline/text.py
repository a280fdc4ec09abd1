"""Text normalisation shared by every loader, in Python and as DuckDB macros.

Purposes (项目名称) and document numbers (文号) are written by hand: full- or half-width
brackets, stray spaces, full-width digits. They are compared through a *key*: the same function
in Python (notices, small inputs) and in SQL (ledgers, millions of rows), built from the same
translation table so the two cannot drift apart (tests/test_text.py checks they agree). The
same goes for telling a bank or paying agency among the payees (is_bank_payee). How many months a
payment's summary (摘要) says it pays (back pay, 补发1-3月) is read in SQL only, by the rule and the
indicator that hold a household to a monthly standard: summary_months, a macro with no Python twin.
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
_SPACE_SQL = r"[\s\x{3000}\x{00a0}]+"  # the same, as DuckDB's regular expressions write it

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


# A payee (收款人) that is a bank or a paying agency, not a household. Many units pay subsidies
# through a bank's batch payment (银行代发): the ledger line then names the bank or the agency
# (中国农业银行克州分行, 农村信用合作社, 财政局代发, 代发工资户) and carries many households' money.
# A person's name must never be taken for one. A Chinese personal name has at most four characters
# (a surname of one or two, a given name of one or two), and none of the words below is a surname
# or a compound surname. But a word of two characters can be a given name, or a surname and a given
# name (李银行, 欧阳银行, 代发明: 代 is a surname). So a payee is taken for a bank or agency only
# when, with spaces and bracketed notes taken out (张三（银行代发） is 张三, a household), it holds
# one of the words and runs longer than four characters (no person's name does), or holds two of
# them (银行代发: a name of four characters holds at most one). A short form of one word
# (农业银行, 信用社, 代发) stays a household, as 欧阳银行 must: the bank's full name is recognised.
# Transliterated names (阿依古丽·买买提) run longer, but their syllables use none of these words.
BANK_PAYEE_WORDS = ("银行", "信用社", "信用合作", "信用联社", "农信社", "农商行", "支行", "分行",
                    "营业部", "储蓄所", "代发", "代付")
_BANK_WORD = "(" + "|".join(BANK_PAYEE_WORDS) + ")"
_BRACKETED = "[(（][^()（）]*[)）]"  # a note in brackets, half or full width
_BANK_WORD_RE = re.compile(_BANK_WORD)
_TWO_BANK_WORDS_RE = re.compile(_BANK_WORD + ".*" + _BANK_WORD)
_BRACKETED_RE = re.compile(_BRACKETED)


def is_bank_payee(payee: str | None) -> bool:
    """Whether a payee is a bank or paying agency (银行代发), never a household: '中国农业银行克州分行',
    '财政局代发', '银行代发' are; '李银行', '代发明', '农业银行', '张三（银行代发）' are not (see above)."""
    if not payee:
        return False
    text = _SPACE.sub("", _BRACKETED_RE.sub("", payee))
    if _TWO_BANK_WORDS_RE.search(text):
        return True
    return len(text) > 4 and _BANK_WORD_RE.search(text) is not None


# Back pay (补发): a household approved late is paid two or three months at once, and the voucher's
# summary (摘要) says which: 补发1-3月租赁补贴, 补发2024年1至3月, 1～3月, 一至三月 (a range), 发放3、4月份补贴
# (a list), 补发2个月, 两个月 (a count). summary_months reads how many months that is, and only where
# the text says nothing else that could be a month: apart from the one expression and a year
# before it (2024年), the summary holds no digit and no 月 (补发1-3月及5月, 3月补发1-2月, 每户每月480元
# are read as one month). A range runs forward within a year (12-2月, 3-3月, 13-15月 are one month),
# a list names distinct months (3、3月 is one), a count is 1 to 12. A month in Chinese numerals
# (一 … 十二) is read only where no other numeral runs into it: 张三一至三月 is one month (张三1-3月 is
# three). Everything else is one month, as a summary that names none (发放3月租赁补贴, 补发2024年8月).
# The text is read with spaces taken out and full-width digits and dashes made ASCII.
_SUMMARY_FULL = "０１２３４５６７８９－—–～〜~"
_SUMMARY_HALF = "0123456789------"
assert len(_SUMMARY_FULL) == len(_SUMMARY_HALF)
_CN_DIGITS = "一二三四五六七八九"
_MONTH = "(?:1[0-2]|0?[1-9])"                                # 1 … 12 in digits
_MONTH_CN = f"(?:十[一二]?|[{_CN_DIGITS}])"                     # 一 … 十二
_COUNT_CN = f"(?:十[一二]?|[{_CN_DIGITS}两])"                   # 两个月 too
_YEAR = "(?:19|20)[0-9]{2}年度?"


def _months_expression(month: str, count: str) -> str:
    """A range (1-3月, 1月至3月), a list (3、4月, 3月、4月) or a count (2个月)."""
    return f"{month}月?[-至到]{month}月|{month}(?:月?、{month})+月|{count}个月"


# The whole summary: what comes before the expression (and a year), the expression (group 1), what
# follows it; neither side holds a digit or 月. Before numerals in Chinese, no other numeral either.
_SUMMARY_DIGITS = f"^[^0-9月]*(?:{_YEAR})?({_months_expression(_MONTH, _MONTH)})[^0-9月]*$"
_SUMMARY_CN = (f"^(?:[^0-9月]*{_YEAR}|[^0-9月]*[^0-9月〇零两十{_CN_DIGITS}])?"
               f"({_months_expression(_MONTH_CN, _COUNT_CN)})[^0-9月]*$")
# Any of these marks a summary worth reading; most (发放3月租赁补贴) have none and are one month at
# the cost of one search.
_SUMMARY_MARKS = "[-－—–~～〜至到、个]"


def decode_text(raw: bytes) -> tuple[str, str] | None:
    """A small text file's text and encoding, as Windows programs save one: by its BOM (UTF-8,
    UTF-16), else UTF-8, else GB18030 (which GBK is a part of), else UTF-16 without a BOM when
    it is plainly that (see utf16_without_bom); None when none reads it, or what it reads holds
    NUL characters (a binary file)."""
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
    if (text is None or "\x00" in text) and encoding not in ("utf-8-sig", "utf-16"):
        text, encoding = utf16_without_bom(raw) or (text, encoding)
    if text is None or "\x00" in text:
        return None
    return text.lstrip("\ufeff"), encoding


# UTF-16 saved without a BOM (Notepad's "Unicode" in some versions, some OA systems' exports, a
# Windows tool's "Unicode text" ledger export). Neither UTF-8 nor GB18030 reads a NUL byte as
# anything but a NUL character (neither uses the byte 0x00 inside a character), so only bytes
# that they cannot read as text, or read as text holding NULs, are tried, and taken for UTF-16
# only when they plainly are:
# - its ASCII (tabs, line ends, digits) puts a NUL byte in every other place, at odd offsets
#   (little-endian) or even ones (big-endian), and few NULs stand in the other places (a
#   character such as 一, U+4E00, has one there); random bytes have as many in both;
# - it decodes strictly (an unpaired surrogate, as random bytes soon give, does not);
# - the text holds no control characters but tabs, line and page breaks (\v and \f, as Word
#   and PDF extraction leave them), and it is Chinese: most of what is not ASCII is CJK
#   ideographs (random 16-bit values are mostly other scripts).
_UTF16_SAMPLE = 16384
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def utf16_without_bom(raw: bytes, sample: bool = False) -> tuple[str, str] | None:
    """The text and encoding (utf-16-le / utf-16-be) of bytes that are plainly UTF-16 without a
    BOM (see above); None otherwise. sample: raw is the first part of a longer file (the ledger
    loader's 1 MB sample), which may end inside a character: the text then is what decodes before
    it."""
    if sample:
        raw = raw[: len(raw) - len(raw) % 2]
    elif len(raw) % 2:
        return None
    head = raw[:_UTF16_SAMPLE]
    at_even, at_odd = head[0::2].count(0), head[1::2].count(0)
    if at_odd >= 4 and at_even * 8 <= at_odd:
        encoding = "utf-16-le"
    elif at_even >= 4 and at_odd * 8 <= at_even:
        encoding = "utf-16-be"
    else:
        return None
    try:  # not final for a sample: a surrogate pair cut at its end is left out, not an error
        text = codecs.getincrementaldecoder(encoding)("strict").decode(raw, final=not sample)
    except UnicodeDecodeError:
        return None
    if _CONTROL.search(text):
        return None
    cjk = len(_CJK.findall(text))
    beyond_ascii = len(text) - len(text.encode("ascii", "ignore"))
    if cjk == 0 or cjk * 2 < beyond_ascii:
        return None
    return text, encoding


def install_macros(con) -> None:
    """Create the SQL twins of purpose_key / doc_no_key / is_bank_payee, and summary_months, in a
    DuckDB connection."""
    full = _FULL.replace("'", "''")
    half = _HALF.replace("'", "''")
    con.execute(
        f"""
        create or replace macro purpose_key(s) as
            lower(regexp_replace(translate(s, '{full}', '{half}'), '{_SPACE_SQL}', '', 'g'))
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
    # The same words and brackets as is_bank_payee; `t` is the payee without bracketed notes and
    # spaces (DuckDB computes the repeated expression once). Most payees hold none of the words:
    # one search of the text as written settles them first (two million such payees: 0.3 s,
    # against 1.9 s for taking out brackets and spaces of each).
    t = ("regexp_replace(regexp_replace(s, '" + _BRACKETED + "', '', 'g'), "
         "'" + _SPACE_SQL + "', '', 'g')")
    con.execute(
        f"""
        create or replace macro is_bank_payee(s) as
            case when regexp_matches(s, '{_BANK_WORD}')
                 then coalesce(regexp_matches({t}, '{_BANK_WORD}.*{_BANK_WORD}')
                               or (length({t}) > 4 and regexp_matches({t}, '{_BANK_WORD}')), false)
                 else false end
        """
    )
    # summary_months(s): the months a payment's summary says it pays (see above), 1 when it says
    # none or is unclear. summary_months_expression takes the expression out of the summary, its
    # numerals in digits and its 月 dropped ('1-3', '3、4', '2个'); summary_months_counted counts it
    # (null when it is no forward range or distinct list).
    con.execute(
        f"""
        create or replace macro summary_months_expression(t) as
            replace(replace(replace(replace(translate(
                case when regexp_matches(t, '{_SUMMARY_DIGITS}')
                         then regexp_replace(t, '{_SUMMARY_DIGITS}', '\\1')
                     when regexp_matches(t, '{_SUMMARY_CN}')
                         then regexp_replace(t, '{_SUMMARY_CN}', '\\1') end,
                '{_CN_DIGITS}两', '1234567892'), '十1', '11'), '十2', '12'), '十', '10'), '月', '')
        """
    )
    con.execute(
        """
        create or replace macro summary_months_counted(e) as
            case when e like '%个' then cast(replace(e, '个', '') as integer)
                 when position('、' in e) > 0
                     then case when len(list_distinct(string_split(
                                        regexp_replace(replace('、' || e, '、0', '、'), '^、', ''), '、')))
                                    = len(string_split(e, '、'))
                               then len(string_split(e, '、')) end
                 when cast(regexp_replace(e, '^.*[-至到]', '') as integer)
                      > cast(regexp_replace(e, '[-至到].*$', '') as integer)
                     then cast(regexp_replace(e, '^.*[-至到]', '') as integer)
                          - cast(regexp_replace(e, '[-至到].*$', '') as integer) + 1
            end
        """
    )
    con.execute(
        f"""
        create or replace macro summary_months(s) as
            case when regexp_matches(s, '{_SUMMARY_MARKS}')
                 then coalesce(summary_months_counted(summary_months_expression(translate(
                          regexp_replace(s, '{_SPACE_SQL}', '', 'g'),
                          '{_SUMMARY_FULL}', '{_SUMMARY_HALF}'))), 1)
                 else 1 end
        """
    )
