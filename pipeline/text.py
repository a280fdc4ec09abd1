"""Text normalisation shared by every loader, in Python and as DuckDB macros.

Purposes (项目名称) and document numbers (文号) are written by hand: full- or half-width
brackets, stray spaces, full-width digits. They are compared through a *key*: the same function
in Python (notices, small inputs) and in SQL (ledgers, millions of rows), built from the same
translation table so the two cannot drift apart (tests/test_text.py checks they agree). The
same goes for telling a bank or paying agency among the payees (is_bank_payee). How many months a
payment's summary (摘要) says it pays (back pay, 补发1-3月; a quarter, 第一季度) is read in SQL only, by
the rule and the indicator that hold a household to a monthly standard: summary_months_text,
month_bits and months_of, macros with no Python twin.
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


# Back pay (补发) and payments of several months: a household approved late is paid two or three
# months at once, and rent subsidies are often paid by the quarter or the half-year; the voucher's
# summary (摘要) says which months: 补发1-3月租赁补贴, 补发2024年1至3月, 1～3月, 一至三月 (a range), 12-2月,
# 补发2023年12月-2024年2月, 12月至次年2月 (a range across a year end), 发放3、4月份补贴 (a list),
# 2024年第一季度, 一季度, 第2季度, 1-2季度, 第一、二季度 (quarters), 上半年, 下半年 (half-years), 补发2个月,
# 两个月 (a count).
# summary_months_text and month_bits read which months that is, and only where the text says
# nothing else that could be a month: apart from the one expression and a year before it (2024年),
# the summary holds no digit, no 月 and no 季 or 半 (补发1-3月及5月, 3月补发1-2月, 每户每月480元,
# 上半年补发1-3月 are unclear). A range runs forward, within a year or across one year end (3-3月 and 13-15月 are
# unclear; 12-2月 is December to February); a list names distinct months of one year (3、3月 is
# unclear); a count is 1 to 12. A month in Chinese numerals (一 … 十二) is read only where no other
# numeral runs into it: 张三一至三月 is unclear (张三1-3月 is three). One month with 补发 right before
# it is back pay of that month (补发2月 in March pays February; 补发12月 in January, December of the
# year before). A summary that names one month otherwise (发放3月租赁补贴: paid in April, it is
# April's payment) or none, or is unclear, pays the month it is posted in.
# The text is read with spaces taken out and full-width digits and dashes made ASCII.
#
# The months are placed on the calendar, relative to the month the line is posted in, so that the
# lines of one payee-month can be put together (the rule and the indicator count the months they
# pay between them, SUBSIDY_CAP_EXCEEDED's header says how): months without a year are of the
# year the line is posted in; a range across a year end without one ends in that year, unless it
# starts in or before the month posted (12-2月 posted in December runs to February next year); a
# year named is the year of the months (补发2023年1-3月 posted in March 2024 is not March 2024).
# month_bits gives a bigint of bits: bit MONTH_BITS_BACK is the month posted, a bit below it a month
# before, above it a month after (up to MONTH_BITS_AHEAD months; months further off are unclear);
# a count, which names no month, is that many bits from COUNT_BITS_AT on. OR-ing the bits of a
# payee-month's payments (bit_or) and counting them (months_of) counts the months they name
# together, each once (补发1-2月 and 补发2-3月: 3), the month posted once for all payments that name
# none, and adds the largest count.
_SUMMARY_FULL = "０１２３４５６７８９－—–～〜~"
_SUMMARY_HALF = "0123456789------"
assert len(_SUMMARY_FULL) == len(_SUMMARY_HALF)
MONTH_BITS_BACK = 24   # bit of the month posted: 24 months before it can be named
MONTH_BITS_AHEAD = 11  # and 11 after it (a quarter paid ahead)
COUNT_BITS_AT = MONTH_BITS_BACK + MONTH_BITS_AHEAD + 1
_CN_DIGITS = "一二三四五六七八九"
_MONTH = "(?:1[0-2]|0?[1-9])"                                # 1 … 12 in digits
_MONTH_CN = f"(?:十[一二]?|[{_CN_DIGITS}])"                     # 一 … 十二
_COUNT_CN = f"(?:十[一二]?|[{_CN_DIGITS}两])"                   # 两个月 too
_YEAR = "((?:19|20)[0-9]{2})年度?"                              # captured: the year named
_INNER_YEAR = "(?:(?:19|20)[0-9]{2}年度?|次年)"                   # the year a range ends in
_OTHER = "[^0-9月季半]"                                         # what may stand around it


def _months_expression(month: str, count: str, quarter: str) -> str:
    """A range (1-3月, 1月至3月, 12月-2024年2月), a list (3、4月, 3月、4月), a count (2个月), quarters
    (第一季度, 1-2季度, 第一、二季度, 第一季度、第三季度) or a half-year (上半年)."""
    return (f"{month}月?[-至到]{_INNER_YEAR}?{month}月|{month}(?:月?、{month})+月|{count}个月"
            f"|第?{quarter}(?:季度)?[-至到]第?{quarter}季度|第?{quarter}(?:季度)?(?:、第?{quarter}(?:季度)?)*、第?{quarter}季度"
            f"|第?{quarter}季度|[上下]半年")


# The whole summary: what comes before the expression (and a year, group 1), the expression
# (group 2), what follows it; neither side holds a digit, 月, 季 or 半. Before numerals in Chinese,
# no other numeral either, nor one and 、 (张三一、二季度: a list run into a name, unclear, not
# 二季度), and the first expression is the one read (第一至二季度, not 二季度).
_SUMMARY_DIGITS = f"^{_OTHER}*(?:{_YEAR})?({_months_expression(_MONTH, _MONTH, '[1-4]')}){_OTHER}*$"
_SUMMARY_CN = (f"^(?:{_OTHER}*?{_YEAR}|{_OTHER}*?(?:[^0-9月季半〇零两十{_CN_DIGITS}、]"
               f"|[^0-9月季半〇零两十{_CN_DIGITS}]、))??"
               f"({_months_expression(_MONTH_CN, _COUNT_CN, '[一二三四]')}){_OTHER}*$")
# Back pay of one month: 补发 right before it (补发2月, 补发2024年8月, 补发二月份) says the payment is
# that month's, paid late; one month named otherwise (发放3月租赁补贴, paid in April) is the month
# posted. The month alone, after the year: '2024|8'.
_BACK_PAY_DIGITS = f"^{_OTHER}*?补发(?:{_YEAR})?({_MONTH})月{_OTHER}*$"
_BACK_PAY_CN = f"^{_OTHER}*?补发(?:{_YEAR})?({_MONTH_CN})月{_OTHER}*$"
# The months as summary_months_text writes them (install_macros): the year named, '|', the first
# month, then a count, a quarter, a list (of quarters where q ends it), a range with the year of
# its end, or nothing (one month, back pay).
_MONTHS_TEXT = r"([0-9]*)\|([0-9]+)(?:(个)|(q)|((?:、[0-9]+)+)(q?)|-(n|[0-9]{4}年)?([0-9]+)(q?))?"
# Any of these marks a summary worth reading; most (发放3月租赁补贴) have none and pay their own
# month at the cost of one search.
_SUMMARY_MARKS = "[-－—–~～〜至到、个季半]|补发"


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
    """Create the SQL twins of purpose_key / doc_no_key / is_bank_payee, and summary_months_text,
    month_bits, months_of and pays_month (the months a payment's summary says it pays), in a DuckDB
    connection."""
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
    con.execute(
        f"""
        create or replace macro summary_months_found(t) as
            case when regexp_matches(t, '{_SUMMARY_DIGITS}') then regexp_replace(t, '{_SUMMARY_DIGITS}', '\\1|\\2')
                 when regexp_matches(t, '{_SUMMARY_CN}') then regexp_replace(t, '{_SUMMARY_CN}', '\\1|\\2')
                 when regexp_matches(t, '{_BACK_PAY_DIGITS}') then regexp_replace(t, '{_BACK_PAY_DIGITS}', '\\1|\\2')
                 when regexp_matches(t, '{_BACK_PAY_CN}') then regexp_replace(t, '{_BACK_PAY_CN}', '\\1|\\2') end
        """
    )
    # Two steps, so that the regular expressions run once a line: summary_months_text(s) reads the
    # months a summary names (see above), as a text: the year named before them, '|', then the
    # months in digits, with 月 and 第 dropped and 至 a dash ('2024|1-3', '|12-n2' for 次年,
    # '|12-2024年2', '|3、4', '|2个', '|1q' and '|1-2q' for quarters, '|1-6' for 上半年); null when
    # it names none or one, or is unclear. month_bits(m, posted_on) places that text on the
    # calendar, as bits (see above): the month posted where m is null or unclear. The query keeps
    # the text in a column and gives it to month_bits (month_bits(summary_months_text(...)) would
    # read the summary again for each of the many times the macros below name their argument).
    # They take the text apart into a struct of strings (r) and place it from the year and month
    # posted (py, pm): month m of the year posted is m - pm, of the year before 12 less.
    # A macro's body is copied wherever the macro is named, and its arguments wherever the body
    # names them; so each value the others read several times (r, a range's ends) is computed once
    # and named in a lambda, `list_transform([value], lambda v: ...)[1]` (DuckDB's `let`). Written
    # as macros naming one another, the range's ends bound into a tree of thousands of expressions:
    # 0.2 s to plan `select month_bits('|1-3', date '2024-03-01')` and 0.87 s to plan
    # SUBSIDY_CAP_EXCEEDED, on any data, every run.
    con.execute(
        f"""
        create or replace macro summary_months_text(s) as
            case when regexp_matches(s, '{_SUMMARY_MARKS}')
                 then nullif(regexp_extract(
                     replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(
                         translate(summary_months_found(translate(regexp_replace(s, '{_SPACE_SQL}', '', 'g'),
                                                                  '{_SUMMARY_FULL}', '{_SUMMARY_HALF}')),
                                   '{_CN_DIGITS}两至到', '1234567892--'),
                         '十1', '11'), '十2', '12'), '十', '10'), '上半年', '1-6'), '下半年', '7-12'), '次年', 'n'),
                         '季度', 'q'), 'q-', '-'), 'q、', '、'), '第', ''), '月', ''),
                     '^({_MONTHS_TEXT})$', 1), '') end
        """
    )
    # The fields of r are cast through nullif(field, ''): DuckDB 2.0.0 casts a field of a branch
    # whose condition is false too ("Could not convert string '' to INT32"; 2.0.1 does not), and
    # null casts to null on every version.
    # A count: that many bits from COUNT_BITS_AT on (OR-ed, the largest count of a payee-month).
    con.execute(
        f"""
        create or replace macro summary_count_bits(r) as
            case when cast(nullif(r.a, '') as integer) between 1 and 12
                 then ((cast(1 as bigint) << cast(nullif(r.a, '') as integer)) - 1) << {COUNT_BITS_AT} end
        """
    )
    # A list: months of one year (the year named, or the year posted; o places month m of it at
    # o + m), each a bit where it is in reach; unclear (null) unless every month it names is a
    # distinct one in reach (leading zeros read away: 03、3月 names March twice). A list of quarters
    # names their months (第一、二季度: January to June).
    con.execute(
        f"""
        create or replace macro summary_list_months(r) as
            list_transform([list_transform(string_split(r.a || r.list, '、'), lambda x: cast(x as integer))],
                lambda n: case when r.list_quarters = '' then n
                               else flatten(list_transform(n, lambda q: [3 * q - 2, 3 * q - 1, 3 * q])) end)[1]
        """
    )
    con.execute(
        f"""
        create or replace macro summary_list_bits(r, py, pm) as
            list_transform(
                [{{'months': summary_list_months(r),
                  'o': 12 * coalesce(cast(nullif(r.y, '') as integer) - py, 0) - pm}}],
                lambda l: case
                    when len(list_distinct(l.months)) = len(l.months)
                         and len(list_filter(l.months, lambda m: m between 1 and 12
                                             and l.o + m between -{MONTH_BITS_BACK} and {MONTH_BITS_AHEAD}))
                             = len(l.months)
                    then cast(list_reduce(list_transform(l.months, lambda m: cast(1 as bigint) << ({MONTH_BITS_BACK} + l.o + m)),
                                          lambda x, y: x | y) as bigint) end)[1]
        """
    )
    # A range: its first and last month (a, b; of quarters, in months); the year its last month is
    # in, where it names one (counted from the year posted); the year of its first month (fy): the
    # year named, or the year before the one named for its last month where it crosses a year end
    # (12月-2024年2月), or the year before the year posted where it crosses one (12-2月, 12月至次年2月)
    # and starts after the month posted, or where it is one month of back pay after the month
    # posted (补发12月 in January), else the year posted; its first and last month counted
    # from the month posted. Written with a dash, it runs forward (3-3月 is unclear).
    con.execute(
        """
        create or replace macro summary_range_a(r) as
            case when r.quarter <> '' or r.quarters <> '' then 3 * cast(nullif(r.a, '') as integer) - 2
                 else cast(nullif(r.a, '') as integer) end
        """
    )
    con.execute(
        """
        create or replace macro summary_range_b(r) as
            case when r.quarter <> '' then 3 * cast(nullif(r.a, '') as integer)
                 when r.quarters <> '' then 3 * cast(nullif(r.b, '') as integer)
                 when r.b <> '' then cast(nullif(r.b, '') as integer)
                 else cast(nullif(r.a, '') as integer) end
        """
    )
    con.execute(
        """
        create or replace macro summary_range_end_year(r, py) as
            cast(nullif(replace(replace(r.end_year, 'n', ''), '年', ''), '') as integer) - py
        """
    )
    con.execute(
        """
        create or replace macro summary_range_first_year(r, a, b, py, pm) as
            case when r.y <> '' then cast(nullif(r.y, '') as integer) - py
                 when r.end_year not in ('', 'n') then summary_range_end_year(r, py) - (case when a > b then 1 else 0 end)
                 when (r.end_year = 'n' or a > b) and pm < a then -1
                 when r.b = '' and r.quarter = '' and pm < a then -1  -- one month, back pay: past
                 else 0 end
        """
    )
    con.execute(
        """
        create or replace macro summary_range_last_year(r, a, b, py, fy) as
            case when r.end_year not in ('', 'n') then summary_range_end_year(r, py)
                 when r.end_year = 'n' or a > b then fy + 1
                 else fy end
        """
    )
    con.execute(
        f"""
        create or replace macro summary_range_bits(r, py, pm) as
            list_transform([{{'a': summary_range_a(r), 'b': summary_range_b(r)}}], lambda ab:
                list_transform([summary_range_first_year(r, ab.a, ab.b, py, pm)], lambda fy:
                    list_transform([{{'first': 12 * fy + ab.a - pm,
                                      'last': 12 * summary_range_last_year(r, ab.a, ab.b, py, fy) + ab.b - pm}}],
                        lambda s: case
                            when s.last >= s.first + (case when r.b <> '' then 1 else 0 end)
                                 and s.first >= -{MONTH_BITS_BACK} and s.last <= {MONTH_BITS_AHEAD}
                            then ((cast(1 as bigint) << (s.last - s.first + 1)) - 1) << ({MONTH_BITS_BACK} + s.first)
                            end)[1])[1])[1]
        """
    )
    con.execute(
        """
        create or replace macro summary_months_bits(r, py, pm) as
            case when r.count <> '' then summary_count_bits(r)
                 when r.list <> '' then summary_list_bits(r, py, pm)
                 when r.a <> '' then summary_range_bits(r, py, pm) end
        """
    )
    # Most lines name no months (m is null): the month posted, without taking m apart.
    con.execute(
        f"""
        create or replace macro month_bits(m, posted_on) as
            coalesce(case when m is not null then list_transform(
                         [regexp_extract(m, '^{_MONTHS_TEXT}$',
                                         ['y', 'a', 'count', 'quarter', 'list', 'list_quarters', 'end_year', 'b', 'quarters'])],
                         lambda r: summary_months_bits(r, year(posted_on), month(posted_on)))[1] end,
                     cast(1 as bigint) << {MONTH_BITS_BACK})
        """
    )
    # pays_month(bits, k): whether month_bits' bits pay the month k months from the month posted
    # (k from -MONTH_BITS_BACK to MONTH_BITS_AHEAD; a count's bits are none of these), for
    # SUBSIDY_CAP_EXCEEDED's months paid again from another month
    con.execute(
        f"""
        create or replace macro pays_month(bits, k) as ((bits >> ({MONTH_BITS_BACK} + k)) & 1) = 1
        """
    )
    # months_of(bits): how many months the bits of a payee-month's payments, OR-ed, say they pay
    # together (at least one: a month of reversals alone is still a month).
    con.execute(
        """
        create or replace macro months_of(bits) as greatest(cast(bit_count(bits) as integer), 1)
        """
    )
