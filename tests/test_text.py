"""The text keys in Python (notices, small inputs) and their SQL twins (ledgers) agree: a notice's
number and a ledger's 指标文号, a notice's line and a ledger's sub-account, are compared through
them, one side computed by each."""
import datetime as dt

import duckdb
import pytest

from pipeline.text import (COUNT_BITS_AT, MONTH_BITS_BACK, decode_text, doc_no, install_macros,
                           is_bank_payee, purpose_key)

# As 指标文号 cells are typed: brackets of every shape, spaces, full-width digits, a number written
# with a leading zero, words after the 号.
DOC_NOS = [
    ("克区财综〔2024〕2号", "克区财综〔2024〕2号"),
    ("克区财综﹝2024﹞2号", "克区财综〔2024〕2号"),
    ("克区财综[2024]2号", "克区财综〔2024〕2号"),
    ("克区财综［2024］2号", "克区财综〔2024〕2号"),
    ("克区财综（2024）2号", "克区财综〔2024〕2号"),
    ("克区财综【2024】2号", "克区财综〔2024〕2号"),
    (" 克区财综 〔2024〕 2号 ", "克区财综〔2024〕2号"),
    ("克区财综〔２０２４〕２号", "克区财综〔2024〕2号"),
    ("克区财综〔2024〕02号", "克区财综〔2024〕2号"),
    ("克区财综〔2024〕002号", "克区财综〔2024〕2号"),
    ("克区财综〔2024〕20号", "克区财综〔2024〕20号"),
    ("克区财综〔2024〕10号", "克区财综〔2024〕10号"),
    ("克区财综〔2024〕2号文", "克区财综〔2024〕2号"),
    ("新财综〔2024〕16号（第二批）", "新财综〔2024〕16号"),
]


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    install_macros(c)
    yield c
    c.close()


@pytest.mark.parametrize("cell, expected", DOC_NOS)
def test_doc_no__python_and_sql_agree(con, cell, expected):
    assert doc_no(cell) == expected
    assert con.execute("select doc_no_key(?)", [cell]).fetchone()[0] == expected


@pytest.mark.parametrize("cell", [
    "2024年 租赁补贴（中央直达）", "2024年租赁补贴(中央直达)", "２０２４年租赁补贴［中央直达］",
    "\u30002024年\u00a0租赁补贴（中央直达） ", "ABC租赁补贴",
])
def test_purpose_key__python_and_sql_agree(con, cell):
    assert con.execute("select purpose_key(?)", [cell]).fetchone()[0] == purpose_key(cell)


# Summaries (摘要) of back pay (补发) and of payments of several months: how many months a payment
# says it pays, read in SQL only (the rule and the indicator that hold a household to a monthly
# standard); anything unclear is one, the month it is posted in (here 15 March 2024).
SUMMARY_MONTHS = [
    # a range
    ("补发1-3月租赁补贴", 3),
    ("补发2024年1至3月租赁补贴", 3),
    ("1-2月租赁补贴", 2),
    ("补发1～3月租赁补贴", 3),
    ("补发1~3月", 3),
    ("补发１－３月", 3),            # full-width digits and dash
    ("补发 1 - 3 月", 3),
    ("补发1月至3月", 3),
    ("补发1到3月租赁补贴", 3),
    ("补发01-03月份", 3),
    ("补发一至三月", 3),
    ("补发十一至十二月", 2),
    ("补发十月至十二月", 3),
    ("2024年度1-3月补发", 3),
    ("补发张三1-3月租赁补贴", 3),   # a name before it
    ("第二批补发1-3月", 3),
    # a range across a year end
    ("12-2月", 3),
    ("补发2023年12月-2024年2月", 3),
    ("补发12月至次年2月", 3),
    ("补发十二月至次年二月", 3),
    ("补发2023年11月至2024年2月", 4),
    # quarters and half-years
    ("2024年第一季度租赁补贴", 3),
    ("一季度租赁补贴", 3),
    ("1季度", 3),
    ("第2季度", 3),
    ("发放2024年第三季度租赁补贴", 3),
    ("1-2季度", 6),
    ("第一至二季度", 6),
    ("发放第一、二季度租赁补贴", 6),   # a list of quarters: their months
    ("第1、2季度", 6),
    ("第一季度、第三季度", 6),
    ("2024年第一、二、三季度", 9),
    ("一、二季度", 6),                # the list read from its first numeral, not 二季度 alone
    ("第一、一季度", 1),              # a quarter twice
    ("上半年租赁补贴", 6),
    ("2024年下半年租赁补贴", 6),
    # a list
    ("发放3、4月份补贴", 2),
    ("发放3月、4月补贴", 2),
    ("补发3、4、5月", 3),
    ("补发十、十一月", 2),
    ("一、二、三月份补贴", 3),        # from its first numeral (not 二、三月: 2)
    # a count
    ("补发2个月租赁补贴", 2),
    ("补发两个月", 2),
    ("补发三个月", 3),
    ("补发12个月", 12),
    # one month: named, or none, or unclear
    ("3月租赁补贴", 1),
    ("发放2024年3月保障性住房租赁补贴", 1),
    ("补发2024年8月保障性住房租赁补贴", 1),   # back pay of one month (the demo's double payment)
    ("2024年", 1),
    ("发放租赁补贴", 1),
    ("13-15月", 1),                  # no such months
    ("3-3月", 1),
    ("2024年12月-2024年2月", 1),     # backwards
    ("5季度", 1),
    ("3、3月", 1),                   # a month twice
    ("03、3月", 1),
    ("13个月", 1),
    ("补发1-3月及5月", 1),           # two expressions
    ("3月补发1-2月", 1),
    ("上半年补发1-3月", 1),
    ("第一季度3月份", 1),
    ("补发1-3月租赁补贴（每户480元）", 1),  # another number beside it
    ("每户每月480元", 1),
    ("补发张三一至三月", 1),         # 三一: numerals run together
    ("张三一、二季度", 1),           # 三一、: a list run into a name (not 二季度: 3)
    ("租赁补贴、二季度", 3),          # 、 after no numeral: the quarter
    ("发放第1-3批", 1),
    ("冲销：发放3月租赁补贴", 1),
    ("补发2020年1-3月", 1),          # further back than the bits reach
    ("", 1),
    (None, 1),
]


# As the rule and the indicator read them: the summary's text in a column, then its bits.
MONTH_BITS = ("select month_bits(m, cast(posted_on as date)) from (select summary_months_text(s) as m, posted_on "
              "from (select unnest(?) as s, unnest(?) as posted_on))")


@pytest.fixture(scope="module")
def months_read():
    """Every summary of SUMMARY_MONTHS read in one query (a query of these macros takes a tenth of
    a second to plan), as {summary: months}."""
    con = duckdb.connect()
    install_macros(con)
    summaries = [s for s, _ in SUMMARY_MONTHS]
    rows = con.execute(f"select months_of(b) from ({MONTH_BITS}) as t(b)",
                       [summaries, ["2024-03-15"] * len(summaries)]).fetchall()
    con.close()
    return dict(zip(summaries, (r[0] for r in rows)))


@pytest.mark.parametrize("summary, months", SUMMARY_MONTHS)
def test_summary_months__back_pay_reads_the_months_a_summary_names(months_read, summary, months):
    assert months_read[summary] == months


def test_summary_months__the_macros_bind_to_a_small_plan(con):
    # A macro's body is copied wherever it is named; when month_bits' macros named one another,
    # the rule's shape of query (bits OR-ed, then counted) bound into a plan of thousands of
    # expressions: 0.2-0.9 s to plan, on any data, every run (267,328 characters of JSON plan for
    # this query, against 15,247 with each value named once in a lambda). Planning time is the
    # bench's to measure; the plan's size is what grew.
    plan = con.execute("explain (format json) select months_of(bit_or(month_bits(m, posted_on))) "
                       "from (select summary_months_text(s) as m, posted_on "
                       "from (select 'x' as s, date '2024-03-01' as posted_on))").fetchall()
    assert len("".join(row[1] for row in plan)) < 40_000


def _months_named(con, summary, posted_on):
    """The months a summary names, as 'YYYY-MM', from the bits month_bits gives."""
    bits = con.execute(MONTH_BITS, [[summary], [posted_on]]).fetchone()[0]
    posted = dt.date.fromisoformat(posted_on)
    months = []
    for bit in range(COUNT_BITS_AT):
        if bits >> bit & 1:
            index = posted.year * 12 + posted.month - 1 + bit - MONTH_BITS_BACK
            months.append(f"{index // 12}-{index % 12 + 1:02d}")
    return months


@pytest.mark.parametrize("summary, posted_on, months", [
    ("补发1-3月租赁补贴", "2024-03-20", ["2024-01", "2024-02", "2024-03"]),
    ("发放租赁补贴", "2024-03-20", ["2024-03"]),                      # none: the month posted
    ("3月租赁补贴", "2024-04-02", ["2024-04"]),                       # one: the month posted, as before
    ("2024年第一季度租赁补贴", "2024-01-10", ["2024-01", "2024-02", "2024-03"]),   # paid ahead
    ("下半年", "2024-12-10", ["2024-07", "2024-08", "2024-09", "2024-10", "2024-11", "2024-12"]),
    ("12-2月", "2024-02-10", ["2023-12", "2024-01", "2024-02"]),       # back pay across the year end
    ("12-2月", "2023-12-10", ["2023-12", "2024-01", "2024-02"]),       # paid ahead across it
    ("补发2023年12月-2024年2月", "2024-03-10", ["2023-12", "2024-01", "2024-02"]),
    ("补发12月至次年2月", "2024-03-10", ["2023-12", "2024-01", "2024-02"]),
    ("补发2023年1-2月", "2024-03-10", ["2023-01", "2023-02"]),        # a year named is that year
    ("发放3、5月", "2024-05-10", ["2024-03", "2024-05"]),
    ("第一、三季度", "2024-09-10", ["2024-01", "2024-02", "2024-03", "2024-07", "2024-08", "2024-09"]),
    ("补发2月租赁补贴", "2024-03-20", ["2024-02"]),                  # one month of back pay: that month
    ("补发二月份", "2024-03-20", ["2024-02"]),
    ("补发十二月", "2025-01-10", ["2024-12"]),                       # back pay: the year before
    ("补发2024年8月保障性住房租赁补贴", "2024-09-10", ["2024-08"]),
])
def test_summary_month_bits__places_the_months_from_the_month_posted(con, summary, posted_on, months):
    assert _months_named(con, summary, posted_on) == months


def test_months_of__payments_of_one_month_count_the_months_they_name_together(con):
    # each month once: two ordinary lines are one month; 补发1-3月 beside March's own line three;
    # March's own line and 补发1-2月 three; a count (names no month) adds to the others
    def months(*summaries):
        return con.execute(f"select months_of(bit_or(b)) from ({MONTH_BITS}) as t(b)",
                           [list(summaries), ["2024-03-15"] * len(summaries)]).fetchone()[0]
    assert months("3月租赁补贴", "发放租赁补贴") == 1
    assert months("补发1-3月租赁补贴", "3月租赁补贴") == 3
    assert months("补发1-2月租赁补贴", "3月租赁补贴") == 3
    assert months("补发1-2月", "补发2-3月") == 3
    assert months("补发2个月", "3月租赁补贴") == 3
    assert months("补发2个月", "补发2个月") == 2           # indistinguishable from one paid twice
    assert months("2024年第一季度租赁补贴", "补发1-3月") == 3
    assert months("补发2月租赁补贴", "3月租赁补贴") == 2   # February's back pay beside March's own
    assert months("补发3月租赁补贴", "3月租赁补贴") == 1   # March twice


# Payees (收款人): a bank or paying agency (银行代发) is no household; a person's name never is one.
BANK_PAYEES = [
    ("中国农业银行克州分行", True),
    ("中国农业银行股份有限公司克孜勒苏分行营业部", True),
    ("农村信用合作社", True),
    ("克州农村信用联社", True),
    ("阿图什市农信社", True),
    ("克州农商银行代发", True),
    ("代发工资户", True),
    ("财政局代发", True),
    ("克拉玛依区财政局代付", True),
    ("银行代发", True),      # four characters, but two words: no name holds two
    ("支行代付", True),
    (" 中国 农业银行\u3000克州分行 ", True),
    ("中国农业银行（代发）", True),  # the bracketed note aside, still a bank
    # people: a personal name has at most four characters and holds one word at most
    ("李银行", False),
    ("欧阳银行", False),      # a compound surname and the given name 银行
    ("代发明", False),        # 代 is a surname
    ("代付", False),
    ("代发", False),
    ("张分行", False),
    ("支行军", False),
    ("王银花", False),        # a character of a word is no word
    ("阿依古丽·买买提", False),
    ("努尔别克·阿不都拉", False),
    ("张三（银行代发）", False),  # 张三, paid through a bank
    ("李银行 (代发)", False),
    ("住户01", False),
    # short forms of one word: could be read as a name of four characters, so a household
    ("农业银行", False),
    ("信用社", False),
    ("", False),
    (None, False),
]


@pytest.mark.parametrize("payee, expected", BANK_PAYEES)
def test_is_bank_payee__python_and_sql_agree(con, payee, expected):
    assert is_bank_payee(payee) is expected
    assert con.execute("select is_bank_payee(?)", [payee]).fetchone()[0] is expected


# --- decode_text: a small text file as Windows programs save one --------------------------------

NOTICE_LINES = "克区财综﹝2024﹞2号\r\n单位：万元\r\n\t序号\r\n\t2024年下达数\r\n\t一\r\n"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_decode_text__utf16_without_a_bom(encoding):
    # the ASCII's NUL bytes stand at odd (LE) or even (BE) places; 一 (U+4E00) puts one in the other
    assert decode_text(NOTICE_LINES.encode(encoding)) == (NOTICE_LINES, encoding)


NOT_TEXT = {
    "ascii_only": bytes(b for c in b"Notice\tNo. 2\r\n" * 40 for b in (c, 0)),  # UTF-16, no Chinese
    "cut_short": NOTICE_LINES.encode("utf-16-le")[:-1],  # cut inside a character
    "control": (NOTICE_LINES + "\x07").encode("utf-16-le"),
    "binary": bytes(range(256)) * 8,  # NULs at both places
    "utf8_with_nul": "克区财综".encode("utf-8") + b"\x00" + "单位".encode("utf-8"),
}


@pytest.mark.parametrize("raw", NOT_TEXT.values(), ids=NOT_TEXT.keys())
def test_decode_text__what_is_not_text_is_still_refused(raw):
    assert decode_text(raw) is None


def test_decode_text__random_bytes_with_nul_at_every_other_place_are_not_utf16():
    import random

    rng = random.Random(7)
    for _ in range(200):
        pairs = [(rng.randrange(256), 0 if rng.random() < 0.3 else rng.randrange(1, 256))
                 for _ in range(1024)]
        assert decode_text(bytes(b for pair in pairs for b in pair)) is None
