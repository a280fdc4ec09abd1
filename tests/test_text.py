"""The text keys in Python (notices, small inputs) and their SQL twins (ledgers) agree: a notice's
number and a ledger's 指标文号, a notice's line and a ledger's sub-account, are compared through
them, one side computed by each."""
import duckdb
import pytest

from pipeline.text import doc_no, install_macros, purpose_key

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
