"""The text keys in Python (notices, small inputs) and their SQL twins (ledgers) agree: a notice's
number and a ledger's 指标文号, a notice's line and a ledger's sub-account, are compared through
them, one side computed by each."""
import duckdb
import pytest

from pipeline.text import decode_text, doc_no, install_macros, is_bank_payee, purpose_key

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


# Summaries (摘要) of back pay (补发): how many months a payment says it pays, read in SQL only (the
# rule and the indicator that hold a household to a monthly standard); anything unclear is one.
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
    # a list
    ("发放3、4月份补贴", 2),
    ("发放3月、4月补贴", 2),
    ("补发3、4、5月", 3),
    ("补发十、十一月", 2),
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
    ("12-2月", 1),                   # across a year end: not read
    ("补发2023年12月-2024年2月", 1),
    ("3、3月", 1),                   # a month twice
    ("03、3月", 1),
    ("13个月", 1),
    ("补发1-3月及5月", 1),           # two expressions
    ("3月补发1-2月", 1),
    ("补发1-3月租赁补贴（每户480元）", 1),  # another number beside it
    ("每户每月480元", 1),
    ("补发张三一至三月", 1),         # 三一: numerals run together
    ("发放第1-3批", 1),
    ("冲销：发放3月租赁补贴", 1),
    ("", 1),
    (None, 1),
]


@pytest.mark.parametrize("summary, months", SUMMARY_MONTHS)
def test_summary_months__back_pay_reads_the_months_a_summary_names(con, summary, months):
    assert con.execute("select summary_months(?)", [summary]).fetchone()[0] == months


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
