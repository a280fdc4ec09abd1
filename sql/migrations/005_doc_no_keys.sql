-- Version 5: a ledger line's 指标文号 is keyed as doc_no_key keys it since 2026-11-28 (full-width
-- digits and a number's leading zeros forgiven: 克区财综〔2024〕02号 and 克区财综（２０２４）２号 are
-- 克区财综〔2024〕2号). A line loaded before kept its older key until its file was loaded again, so
-- such a line named no notice and was tied by its project code alone. Each such line whose new
-- key is a loaded notice's number is keyed again here; no other line changes, so no line that
-- named a notice before stops naming it (a notice stored under an older form of its number).
-- doc_no_key is installed before the migrations run (pipeline/store.py).
update ledger_lines
set budget_doc_no = doc_no_key(budget_doc_no)
where budget_doc_no is not null
  and budget_doc_no not in (select notice_no from notices)
  and doc_no_key(budget_doc_no) in (select notice_no from notices);
