"""The one text-table formatter of the command line."""

from fusionrt.runtime.text_table import format_table


def test_left_aligned_table_with_a_rule_and_no_trailing_blanks():
    text = format_table(["name", "kind"], [["camera", "sensor"], ["jsonl", "sink"]])
    assert text.splitlines() == [
        "name    kind",
        "------  ------",
        "camera  sensor",
        "jsonl   sink",
    ]


def test_figures_are_right_aligned_after_the_first_column():
    text = format_table(
        ["stage", "p50 ms"], [["infer", "12.90"], ["decode.camera", "0.41"]], numbers_right=True
    )
    assert text.splitlines() == [
        "stage          p50 ms",
        "-------------  ------",
        "infer           12.90",
        "decode.camera    0.41",
    ]
