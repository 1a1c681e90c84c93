"""Known answers for de-identifying patient free text: every planted identifier becomes its typed
placeholder, and ordinary complaint words survive for the topic models."""
from __future__ import annotations

import pytest

from medmkt_assets.lib.voice.deidentify import PLACEHOLDERS, Redacted, redact, redact_many

# (text, expected text, expected counts)
KNOWN_ANSWERS = [
    # e-mail and URL
    ("邮箱patient123@example.com，送药很快", "邮箱[EMAIL]，送药很快", {"EMAIL": 1}),
    ("email me at John.Doe+med@mail.example.co.uk please", "email me at [EMAIL] please", {"EMAIL": 1}),
    ("see https://www.example.com/review?id=7. thanks", "see [URL]. thanks", {"URL": 1}),
    ("网址 medmkt.cn/abc 很好用", "网址 [URL] 很好用", {"URL": 1}),
    # phones
    ("请回电13812345678", "请回电[PHONE]", {"PHONE": 1}),
    ("请回电138 1234 5678，谢谢", "请回电[PHONE]，谢谢", {"PHONE": 1}),
    ("手机138-1234-5678或+86 13812345678或0086-138-1234-5678",
     "手机[PHONE]或[PHONE]或[PHONE]", {"PHONE": 3}),
    ("座机010-12345678，深圳0755-1234 5678", "座机[PHONE]，深圳[PHONE]", {"PHONE": 2}),
    ("call me at +1 415 555 0100 or (415) 555-0100", "call me at [PHONE] or [PHONE]", {"PHONE": 2}),
    ("电话：１３８１２３４５６７８", "电话：[PHONE]", {"PHONE": 1}),
    # ID numbers, passports, insurance numbers, long numbers
    ("身份证号44010619850302123X，旧的110105491231002", "身份证号[ID_NUMBER]，旧的[ID_NUMBER]", {"ID_NUMBER": 2}),
    ("my ID is 44010619850302123x", "my ID is [ID_NUMBER]", {"ID_NUMBER": 1}),
    ("护照号E12345678, passport number G1234567", "护照号[ID_NUMBER], passport number [ID_NUMBER]", {"ID_NUMBER": 2}),
    ("医保卡号YB1234567890，价格偏贵", "医保卡号[INSURANCE_NUMBER]，价格偏贵", {"INSURANCE_NUMBER": 1}),
    ("社保卡：ZH20231234 医保号 3201 2345 6789", "社保卡：[INSURANCE_NUMBER] 医保号 [INSURANCE_NUMBER]",
     {"INSURANCE_NUMBER": 2}),
    ("policy number PX-99887766 and member id AB1234567", "policy number [INSURANCE_NUMBER] and member id [INSURANCE_NUMBER]",
     {"INSURANCE_NUMBER": 2}),
    ("code ZH20231234 on the card", "code [INSURANCE_NUMBER] on the card", {"INSURANCE_NUMBER": 1}),
    ("订单号 12345678901 还没发货", "订单号 [NUMBER] 还没发货", {"NUMBER": 1}),
    # dates
    ("出生日期1985-03-02，就诊2024.03.05", "出生日期[DATE]，就诊[DATE]", {"DATE": 2}),
    ("1985年3月2日出生，3月2日复诊，1985/3/2", "[DATE]出生，[DATE]复诊，[DATE]", {"DATE": 3}),
    ("born March 2, 1985, seen 2 March 1985, dob 03/02/1985", "born [DATE], seen [DATE], dob [DATE]", {"DATE": 3}),
    # addresses
    ("我住在中山路88号", "我住在[ADDRESS]", {"ADDRESS": 1}),
    ("北京市朝阳区建国路12号院3栋401室", "[ADDRESS]", {"ADDRESS": 1}),
    ("家住幸福小区3号楼2单元501，停车很方便", "家住[ADDRESS]，停车很方便", {"ADDRESS": 1}),
    ("I live at 12 Park Road, near 221B Baker Street", "I live at [ADDRESS], near [ADDRESS]", {"ADDRESS": 2}),
    ("Flat 3, 45 High St and apt 4B", "[ADDRESS] and [ADDRESS]", {"ADDRESS": 2}),
    ("I live at Guangzhou人民路12号, fast delivery", "I live at [ADDRESS], fast delivery", {"ADDRESS": 1}),
    # Chinese names: cues, surname + role word, jieba
    ("我叫王小明，等待时间太长", "我叫[NAME]，等待时间太长", {"NAME": 1}),
    ("我是陈静，价格偏贵", "我是[NAME]，价格偏贵", {"NAME": 1}),
    ("张医生很耐心", "[NAME]医生很耐心", {"NAME": 1}),
    ("感谢李娜护士，服务态度很好", "感谢[NAME]护士，服务态度很好", {"NAME": 1}),
    ("感谢刘医生的耐心解答", "感谢[NAME]医生的耐心解答", {"NAME": 1}),
    ("王大夫和欧阳主任都很专业", "[NAME]大夫和[NAME]主任都很专业", {"NAME": 2}),
    ("患者李秀英，家属王建国很着急", "患者[NAME]，家属[NAME]很着急", {"NAME": 2}),
    ("我姓王，叫我小王就行", "我姓[NAME]，叫我[NAME]就行", {"NAME": 2}),
    ("降压药 王秀英", "降压药 [NAME]", {"NAME": 1}),
    # English names
    ("Dr. Smith was kind, Mrs Jones too", "Dr. [NAME] was kind, Mrs [NAME] too", {"NAME": 2}),
    ("My name is John Smith, the queue was endless", "My name is [NAME], the queue was endless", {"NAME": 1}),
    ("thanks to Dr. Emily Clark and Nurse Johnson", "thanks to Dr. [NAME] and Nurse [NAME]", {"NAME": 2}),
    ("I talked with Mary Watson about the refill", "I talked with [NAME] about the refill", {"NAME": 1}),
    ("My name is 王秀英, the waiting time was far too long", "My name is [NAME], the waiting time was far too long",
     {"NAME": 1}),
    ("dr wang appointment", "dr [NAME] appointment", {"NAME": 1}),
    # several kinds in one mixed comment
    ("我是王芳，电话138 1234 5678，住在人民路5号，邮箱wf@example.com",
     "我是[NAME]，电话[PHONE]，住在[ADDRESS]，邮箱[EMAIL]", {"NAME": 1, "PHONE": 1, "ADDRESS": 1, "EMAIL": 1}),
]

ORDINARY = [
    "等待时间太长", "医生很耐心", "服务态度一般，需要改进", "价格偏贵", "预约系统不好用", "药品缺货，很失望",
    "送药很快，包装很好", "护士很耐心", "护士长很负责", "主任医生看得很仔细", "任何医生都不理我", "上周医生说要复查",
    "高级护士很专业", "康复医生很好", "过敏很严重", "我是高血压患者", "我是第一次来", "感谢周到的服务",
    "排队2小时，挂号费50元", "药房在5楼，3号窗口", "上个月来过", "3月份人很多", "叶酸 孕检",
    "The nurse was very patient", "Waited 2 hours for a 5 mg prescription", "the nurse was friendly",
    "Took 2 tablets 3 times a day for 14 days, 10 minutes each", "The doctor was late on Monday",
    "I went to Central Hospital last month", "dr is late again", "the price rose 20% since April",
    "it took 5 minutes by road",
]


@pytest.mark.parametrize(("text", "expected", "counts"), KNOWN_ANSWERS, ids=[t[:24] for t, _, _ in KNOWN_ANSWERS])
def test_planted_identifiers_become_typed_placeholders(text, expected, counts):
    result = redact(text)
    assert result == Redacted(expected, counts)


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_complaints_are_unchanged(text):
    assert redact(text) == Redacted(text, {})


@pytest.mark.parametrize(("text", "gone", "kept"), [
    ("我叫王小明，电话13812345678，张医生很耐心", ["王小明", "13812345678", "张"], ["医生很耐心", "电话"]),
    ("Dr. Smith prescribed 5 mg, call 415-555-0100", ["Smith", "415", "0100"], ["prescribed 5 mg", "Dr."]),
    ("身份证 110105 19491231 002X 医保卡号AB12345678", ["110105", "19491231", "002X", "AB12345678"], ["身份证", "医保卡号"]),
])
def test_identifier_substrings_are_gone_and_words_remain(text, gone, kept):
    out = redact(text).text
    assert not [g for g in gone if g in out]
    assert all(k in out for k in kept)


def test_known_identifiers_of_the_author_are_replaced_in_any_spelling():
    known = ["王小明", "+86 13812345678", "XM@Example.com", "P000123", "广州市人民路12号"]
    result = redact("小明的电话是138-1234 5678，邮箱 xm@example.COM，编号P000123，地址广州市人民路12号", known)
    assert result.text == "[NAME]的电话是[PHONE]，邮箱 [EMAIL]，编号[ID_NUMBER]，地址[ADDRESS]"
    assert result.counts == {"NAME": 1, "PHONE": 1, "EMAIL": 1, "ID_NUMBER": 1, "ADDRESS": 1}


def test_known_latin_names_are_case_insensitive_and_parts_count():
    result = redact("john SMITH wrote this; Smith again, call (415) 555 0100", ["John Smith", "4155550100"])
    assert result.text == "[NAME] wrote this; [NAME] again, call [PHONE]"


def test_a_known_birth_date_is_replaced_in_its_other_spellings():
    result = redact("生日1985/3/2，也写作1985年03月02日", ["1985-03-02"])
    assert result == Redacted("生日[DATE]，也写作[DATE]", {"DATE": 2})


def test_a_known_name_with_no_cue_is_still_replaced():
    assert redact("今天丁玲来取药", ["丁玲"]).text == "今天[NAME]来取药"


@pytest.mark.parametrize("text", [t for t, _, _ in KNOWN_ANSWERS] + ORDINARY)
def test_redaction_is_idempotent(text):
    once = redact(text).text
    assert redact(once).text == once


def test_placeholders_are_never_matched_again():
    text = " ".join(PLACEHOLDERS) + " [NAME]医生 Dr. [NAME]"
    assert redact(text) == Redacted(text, {})


@pytest.mark.parametrize("text", [None, "", "   "])
def test_none_and_empty_give_none(text):
    assert redact(text) is None


def test_redact_many_matches_redact_and_keeps_order():
    texts = ["张医生很耐心", None, "价格偏贵", "张医生很耐心", "call 13812345678"]
    known = [[], [], ["价格"], None, ["13812345678"]]
    assert redact_many(texts) == [redact(t) for t in texts]
    assert [r.text if r else None for r in redact_many(texts, known)] == [
        "[NAME]医生很耐心", None, "[NAME]偏贵", "[NAME]医生很耐心", "call [PHONE]"]


def test_redact_many_rejects_misaligned_known():
    with pytest.raises(ValueError):
        redact_many(["a", "b"], [[]])
