"""Typed placeholders for the identifiers that patient free text hides.

Survey comments and website search queries are written by patients, in Chinese, English or
both, and people put their name, phone number, insurance card or home address into them. The
raw text stays in the restricted area; everything downstream (topic models, sentiment, search
analytics, the marts) sees only what `redact` returns, where every identifier is replaced by a
typed, bracketed placeholder such as `[PHONE]` or `[NAME]`. Typed placeholders keep the sentence
readable for topic models ("[NAME]医生很耐心") and let a check count what was removed.

Recall comes before precision: a planted identifier that survives is a privacy leak, a product
name lost to `[NAME]` is a small analytics loss. Ordinary complaint words must still survive, so
the rules are anchored on shapes (digits, @, road + number) or cues (我叫, 医保卡号, Dr., policy
number) rather than on single common words. Rules run in a fixed order (known identifiers, e-mail
and URL, ID numbers, cued numbers, dates, phones, addresses, codes, long numbers, names), each one
seeing the placeholders of the earlier ones, which no rule can match again; the whole pass
repeats until nothing changes, so `redact` is idempotent.

Chinese person names come from jieba's part-of-speech tagger (`nr`), filtered by a list of common
surnames because jieba's dictionary also tags words such as 谢谢 or 康复 as names, plus a surname
in front of a role word (张医生 -> [NAME]医生), which jieba splits apart. jieba is loaded lazily,
once, and only called on texts that contain CJK characters.
"""
from __future__ import annotations

import logging
import re
import re._constants as _sre
import re._parser as _sre_parse
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

PLACEHOLDERS = ("[NAME]", "[PHONE]", "[EMAIL]", "[ID_NUMBER]", "[INSURANCE_NUMBER]", "[ADDRESS]",
                "[DATE]", "[URL]", "[NUMBER]")
MAX_PASSES = 3

CJK = r"\u4e00-\u9fff"
_HAS_CJK = re.compile(f"[{CJK}]")
# Full-width digits, letters and @ (１３８…, ＡＢ, ＠) are read as their ASCII twins; other text is kept as written.
_FULLWIDTH = {c: c - 0xFEE0 for c in [*range(0xFF10, 0xFF1A), *range(0xFF20, 0xFF3B), *range(0xFF41, 0xFF5B)]}
_FULLWIDTH_RE = re.compile("[\uff10-\uff19\uff20-\uff3a\uff41-\uff5a]")
# Chinese characters that end a name candidate: particles, pronouns, common verbs.
_STOP_CH = "的了是在和与说也就很都要想来去看把被对给跟从到我你他她它们这那个吗呢吧啊哦呀又还没不有"

# About 200 common Chinese surnames (compound ones first so they win); characters that are mostly
# function words (和, 时, 全, 成, 应, 明, 文, 安, 常) are left out on purpose; 于 stays (a common name).
_COMPOUND_SURNAMES = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "司徒", "慕容", "令狐", "公孙", "夏侯", "尉迟")
SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃"
    "武戴莫孔向汤温康施牛樊葛邢齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅"
    "童凌毕单季裴霍涂苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳穆农卓古吉缪简车项连"
) | frozenset(_COMPOUND_SURNAMES)
_SURNAME_RE = "(?:" + "|".join(_COMPOUND_SURNAMES) + "|[" + "".join(s for s in SURNAMES if len(s) == 1) + "])"
ROLE_WORDS = ("护士长", "医生", "大夫", "护士", "主任", "医师", "药师", "老师", "教授", "院长", "先生", "女士",
              "小姐", "阿姨", "师傅", "经理", "专家", "主管", "科长")
_ROLE_RE = "(?:" + "|".join(ROLE_WORDS) + ")"
_NAME_CH = f"(?:(?!{_ROLE_RE})(?![{_STOP_CH}])[{CJK}])"  # a character that can continue a name
# Words jieba's dictionary tags as names although they are ordinary words in patient comments.
_NOT_NAMES = frozenset("谢谢 康复 康复科 金银花 胡萝卜 黄连素 过敏 方便 周到 高兴 安全 马上 白天 黄色 常规 温柔 高级 金额 石膏 许多 何时 "
                       "顾客 齐全 关怀 陈旧 孙子 孙女 岳父 岳母 马虎 高超 周全 温馨 周密 宁静 方正 胡说 许可 祝福 "
                       "陈列 周转 周折 殷勤 高明 辛勤 白领 毛巾 胡子 叶子 高中生 申请人 黄金周 严重性 华丽 高雅 钟爱 "
                       "小于 老师 小姐 师傅 胡同 阳光 明白 道德 顾问 高峰 安静".split())
_NR_MAX_FREQ = 500  # dictionary "names" more frequent than this are famous people or ordinary words

_EN_STOP = frozenset("""I The A An This That These Those It He She We They You My Our Your His Her Their
Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July
August September October November December Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec
Hospital Clinic Pharmacy Center Centre Department Emergency University College School Store Shop Mall
Bank Company Group Street Road Avenue Lane Park Station Airport City District Province Health Medical
Care Service Services Customer Support Team Staff Manager Pharmacist Doctor Dr Nurse Mr Mrs Ms Miss
China Chinese English American British Beijing Shanghai Guangzhou Shenzhen God OK Okay Thanks Thank
Please Very Not No Yes And But Also So Or If When Then Just Really Great Good Bad Terrible Excellent
Happy Sad Sorry Hello Hi Dear Best Regards App Website Online Express Insurance Policy Member Card
Overall Today Yesterday Tomorrow Morning Afternoon Evening Night Christmas Easter New Year Covid COVID
Internet WeChat Alipay Taobao Tmall JD Meituan Google Apple Android iPhone""".split())

_EN_LOWER_STOP = frozenset("""is was are were be been has had have and or but the a an to of in on at for with from by
who which that this said says told asked gave give gives prescribed recommended appointment appointments visit visits
office clinic hospital phone number email name not no very so too also always never did does do will would can could
should may might just only really again today yesterday tomorrow near nearby reviews review hours schedule""".split())
_EN_NAME_WORD = r"[A-Z](?:[a-z]+|['’][A-Z][a-z]+)(?:-[A-Z][a-z]+)?"
_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MON_NUM = r"(?:0?[1-9]|1[0-2])"
_CN_NUM = "一二三四五六七八九十〇零两"
_ST_TYPE = (r"(?i:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Place|Pl|Way|"
            r"Terrace|Close|Crescent|Square|Sq|Highway|Hwy|Parkway|Pkwy|Row|Walk|Gardens|Grove|Hill)\b\.?")
_UNIT_EN = r"(?i:flat|apt\.?|apartment|suite|unit|ste\.?|room|rm\.?|floor)\s*#?\s*\d+[A-Za-z]?\b"
_ROAD_CH = f"(?:(?![{_STOP_CH}住近离往向于旁边对面附])[{CJK}])"
_ADMIN_CN = f"(?:{_ROAD_CH}{{1,6}}?(?:省|自治区|市|区|县|镇|乡|街道))"
_UNIT_CN = f"(?:[\\dA-Za-z{_CN_NUM}]+(?:号楼|号院|栋|幢|座|单元|层|楼|室|号|户|排|弄))"
_ADDR_TAIL = r"(?:[\-－]?\d{1,5}(?=$|[\s，。,;；!！?？、]))?"  # a bare room number at the end: "2单元501"
_VALUE_SEP = r"\s*(?:是|为|[:：#]|is|was|no\.?|number)?\s*"
_CODE = r"(?P<v>[A-Za-z]{0,4}[\-]?\d[A-Za-z\d]*(?:[ \-]?\d[A-Za-z\d]*)*)"

# (kind, pattern[, check]): when the pattern has a group `v`, only that group is replaced (the cue
# stays); patterns are ASCII-mode so that \b and \w treat Chinese characters as boundaries; `check` names a function that vetoes or trims a candidate (see `_CHECKS`).
_RULES: list[tuple[str, re.Pattern, str | None]] = [
    (r[0], re.compile(r[1], re.ASCII), r[2] if len(r) > 2 else None) for r in [
    ("EMAIL", r"[A-Za-z0-9][A-Za-z0-9._%+\-]*@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"),
    ("URL", r"(?i:https?://|ftp://|www\.)[^\s<>\"'，。；！？、）》」]*[^\s<>\"'，。；！？、）》」.,;:!?)]"),
    ("URL", r"(?<![@\w.])(?:[A-Za-z0-9\-]+\.)+(?i:com|cn|net|org|edu|gov|io|co|info|me|hk|tw|uk|us)"
            r"\b(?:/[^\s<>\"'，。；！？、）》」]*[^\s<>\"'，。；！？、）》」.,;:!?)])?"),
    # Chinese resident ID: 18 (17 digits + digit/X) or the old 15-digit form.
    ("ID_NUMBER", r"(?<![A-Za-z\d])\d{6}[\s\-]?\d{8}[\s\-]?\d{3}[\dXx](?![A-Za-z\d])"),
    ("ID_NUMBER", r"(?<![A-Za-z\d])\d{15}(?![A-Za-z\d])"),
    ("ID_NUMBER", r"(?i:身份证(?:号码|号)?|护照(?:号码|号)?|病历号|住院号|门诊号|就诊卡号|就诊号|通行证(?:号码|号)?|"
                  r"passport(?:\s*(?:number|no\.?|#))?|id\s*(?:number|no\.?|card)|mrn|patient\s*(?:id|number|no\.?)|"
                  r"medical\s*record\s*(?:number|no\.?)|ssn|social\s*security\s*(?:number|no\.?))"
                  + _VALUE_SEP + _CODE),
    ("INSURANCE_NUMBER", r"(?i:医保卡号|医保卡|医保号|医保账号|社保卡号|社保卡|社保号|保险单号|保单号|保险号|卡号|会员号|会员卡号|"
                         r"policy\s*(?:number|no\.?|#|id)?|member(?:ship)?\s*(?:id|number|no\.?|#)|"
                         r"insurance\s*(?:number|no\.?|id|#|card)|card\s*(?:number|no\.?|#)|account\s*(?:number|no\.?))"
                         + _VALUE_SEP + _CODE),
    # Dates: year-first (ISO, dotted, Chinese), then Chinese month-day, numeric d/m/y, English month names.
    ("DATE", rf"(?<![\d.])(?:19|20)\d{{2}}\s*[\-/.年]\s*{_MON_NUM}\s*[\-/.月]\s*{_DAY}(?:\s*[日号])?(?![\d])"),
    ("DATE", rf"(?<![\d.])(?:19|20)\d{{2}}\s*[年\-/.]\s*{_MON_NUM}\s*月?(?![\d.])(?!\s*[\-/]\s*\d)"),
    ("DATE", rf"(?<!\d){_MON_NUM}\s*月\s*{_DAY}(?:\s*[日号])?(?!\d)"),
    ("DATE", rf"(?<![{CJK}])[{_CN_NUM}]{{1,3}}月[{_CN_NUM}]{{1,3}}[日号]"),
    ("DATE", rf"(?<![\d.])(?:19|20)[{_CN_NUM}\d]{{2}}年(?=出生|生)"),
    ("DATE", r"(?<![\d.])(?:0?[1-9]|[12]\d|3[01])([/.\-])(?:0?[1-9]|[12]\d|3[01])\1(?:\d{4}|\d{2})(?![\d.])"),
    ("DATE", rf"\b{_MONTH}\s+{_DAY}(?:st|nd|rd|th)?\b(?:,?\s+(?:19|20)\d{{2}}\b)?"),
    ("DATE", rf"\b{_DAY}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+(?:19|20)\d{{2}}\b)?"),
    ("DATE", rf"\b{_MONTH}\s+(?:19|20)\d{{2}}\b"),
    ("DATE", r"(?<![\d/])(?:0?[1-9]|1[0-2])/(?:19|20)\d{2}(?![\d/])"),
    ("DATE", r"(?i:\bborn\s+(?:in|on)?\s*)(?P<v>(?:19|20)\d{2})\b"),
    # Phones: Chinese mobile (+86/0086), landline, international, North American, or any digits after a cue.
    ("PHONE", r"(?<![A-Za-z\d])(?:(?:\+|00)\s*86[\s\-]*)?1[3-9]\d(?:[\s\-]?\d){8}(?!\d)"),
    ("PHONE", r"(?<![A-Za-z\d])(?:(?:\+|00)\s*86[\s\-]*)?(?:\(0?\d{2,3}\)|0\d{2,3})[\s\-]?\d{3,4}[\s\-]?\d{4}(?!\d)"),
    ("PHONE", r"(?<![\w+])(?:\+|00)\d{1,3}(?:[\s.\-]?\(?\d{1,5}\)?){2,5}(?!\d)"),
    ("PHONE", r"(?<![\w+])\(?\d{3}\)?[\s.\-]?\d{3}[\s.\-]\d{4}(?!\d)"),
    ("PHONE", r"(?i:电话|手机号?码?|手机|座机|联系方式|tel\.?|phone(?:\s*number)?|mobile|cell|call\s+me\s+(?:at|on))"
              r"\s*(?:是|为|[:：]|is|at)?\s*(?P<v>\+?\(?\d[\d\s\-().]{4,}\d)"),
    # Addresses: Chinese road + number (+ building/unit/room), estates, unit chains; English street lines.
    ("ADDRESS", rf"(?:(?<![A-Za-z])[A-Z][a-z]+\s?(?=[{CJK}]))?{_ADMIN_CN}*{_ROAD_CH}{{1,8}}?(?:路|街|大街|大道|道|巷|弄|胡同|里|村)"
                rf"\s*[\d{_CN_NUM}]+\s*(?:号|弄|巷)(?:院|楼)?(?:\s*{_UNIT_CN})*{_ADDR_TAIL}"),
    ("ADDRESS", rf"{_ADMIN_CN}*{_ROAD_CH}{{2,8}}?(?:小区|花园|公寓|大厦|家园|苑|新村|社区|广场|中心)\s*(?:{_UNIT_CN}\s*)+{_ADDR_TAIL}"),
    ("ADDRESS", rf"(?<![\dA-Za-z]){_UNIT_CN}(?:\s*{_UNIT_CN})+{_ADDR_TAIL}"),
    ("ADDRESS", rf"(?:{_UNIT_EN},?\s*)?\b\d{{1,5}}[A-Za-z]?(?:-\d{{1,5}})?,?\s+(?:[A-Z][A-Za-z'’]*\s+){{1,3}}{_ST_TYPE}"),
    ("ADDRESS", r"(?<![\w.])\d{1,5}[A-Za-z]?\s+(?!(?:minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|blocks?|miles?|"
                r"km|kms|meters?|metres?|times?|people|of|on|in|the|a|by)\b)(?:[a-z]+\s+){1,2}"
                r"(?:street|road|avenue|lane|drive|boulevard)\b"),
    ("ADDRESS", _UNIT_EN),
    ("ADDRESS", r"\b(?i:p\.?\s?o\.?\s*box)\s*\d+\b"),
    ("ADDRESS", r"\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[A-Z]{2}\b"),
    # Messaging accounts after a cue.
    ("ID_NUMBER", r"(?i:微信号?|wechat(?:\s*id)?|weixin|qq号?|whatsapp|telegram|line\s*id)\s*(?:是|为|[:：]|is)?\s*"
                  r"(?P<v>(?=[\w\-]*[\d_])[A-Za-z][\w\-]{5,19}(?![\w\-])|\d{5,12}(?!\d))"),
    # Codes mixing letters and at least four digits (insurance, policy, member numbers), then long numbers.
    ("INSURANCE_NUMBER", r"(?<![A-Za-z\d])(?=[A-Za-z\d]*[A-Za-z])(?=(?:[A-Za-z]*\d){4})[A-Za-z\d]{8,}(?![A-Za-z\d])"),
    ("INSURANCE_NUMBER", r"(?<![A-Za-z\d\-])[A-Za-z]{1,4}-\d{5,}(?![A-Za-z\d])"),
    ("NUMBER", r"(?<!\d)\d(?:[\s\-]?\d){6,}(?!\d)"),
    # Chinese names after cues (checked against jieba's dictionary by `_cn_name`).
    ("NAME", rf"(?<!百)姓\s*(?P<v>{_SURNAME_RE})", "cn"),
    ("NAME", rf"(?:我叫|我的名字是|我的名字叫|名字叫|名字是|姓名[:：]?|签名[:：]?|联系人[:：]?)\s*(?P<v>{_NAME_CH}{{2,3}})", "cn"),
    ("NAME", rf"(?:我是|本人|患者|病人|家属|找的是|挂的是)\s*(?P<v>{_SURNAME_RE}{_NAME_CH}{{0,2}})", "cn"),
    ("NAME", rf"(?:感谢|谢谢|多谢|表扬|投诉|转告|通知)\s*(?P<v>{_SURNAME_RE}{_NAME_CH}{{1,2}})", "cn_strict"),
    ("NAME", rf"(?:^|(?<=[^{CJK}]))(?P<v>{_SURNAME_RE}{_NAME_CH}{{0,2}})(?={_ROLE_RE})", "cn_strict"),
    ("NAME", rf"(?<![A-Za-z])(?i:my\s+name\s+is|name\s+is|i'm|i’m|i\s+am|this\s+is|signed|call\s+me|thanks\s+to|"
             rf"thank\s+you|thanks|name:|patient:?|nurse|doctor|from)[,:]?\s*(?P<v>{_SURNAME_RE}{_NAME_CH}{{0,2}})", "cn"),
    # A short Chinese fragment standing alone (a search query "降压药 王秀英") that starts with a surname.
    ("NAME", rf"(?<![{CJK}])(?P<v>{_SURNAME_RE}[{CJK}]{{1,2}})(?![{CJK}])", "alone"),
    # English names after cues, then runs of capitalised words inside a sentence (`_en_name`).
    ("NAME", rf"(?<![A-Za-z])(?i:dr|mr|mrs|ms|mx|prof)\.?\s*(?P<v>{_SURNAME_RE}{_NAME_CH}{{0,2}})", "cn"),
    ("NAME", rf"(?<![A-Za-z])(?i:dr|mr|mrs|ms|mx|prof)(?:\.\s*|\s+)"
             rf"(?P<v>{_EN_NAME_WORD}(?:\s+{_EN_NAME_WORD})?|[a-z]{{2,}}\b)", "en"),
    ("NAME", rf"(?:(?<![A-Za-z])(?i:doctor|nurse|miss|professor|my\s+name\s+is|name\s+is|i'm|i’m|i\s+am|this\s+is|signed|"
             rf"call\s+me|thanks|thank\s+you|name:|patient:?|from)),?\s+"
             rf"(?P<v>{_EN_NAME_WORD}(?:\s+{_EN_NAME_WORD})?)", "en"),
    ("NAME", rf"(?:(?<=[a-z,;:]\s)|(?<=[{CJK}，；：、]\s)|(?<=[{CJK}，。；：、！？]))"
             rf"(?P<v>{_EN_NAME_WORD}(?:\s+{_EN_NAME_WORD}){{1,2}})\b", "pair"),
]]



# ---- what a rule's every match holds ------------------------------------------------------------------
# Most rules cannot match most texts, and asking the regex engine costs more than looking for one character
# it needs: `_required` reads a pattern's parse tree for characters of which every match holds at least one
# (a rule needing '@', a digit, or one of its cue words' first characters); a text holding none of them is
# left alone without running the rule. Only what consumes characters counts (lookarounds and optional parts
# do not), so the test can only skip a rule that would have found nothing.

_CATEGORIES = {_sre.CATEGORY_DIGIT: [(48, 57)], _sre.CATEGORY_SPACE: [(9, 13), (32, 32)],
               _sre.CATEGORY_WORD: [(48, 57), (65, 90), (95, 95), (97, 122)]}  # ASCII-mode classes


def _cased(lo: int, hi: int, ignore_case: bool) -> list[tuple[int, int]] | None:
    """The code point range lo-hi, and under IGNORECASE the other case of its ASCII letters; None when
    it holds a non-ASCII letter with a case (left to the regex engine)."""
    if not ignore_case:
        return [(lo, hi)]
    if any(chr(c).lower() != chr(c).upper() for c in range(max(lo, 128), hi + 1)):
        return None
    out = [(lo, hi)]
    for a, b in ((65, 90), (97, 122)):
        if max(lo, a) <= min(hi, b):
            out.append((max(lo, a) ^ 32, min(hi, b) ^ 32))
    return out


def _required(items, ignore_case: bool) -> list[tuple[int, int]] | None:
    """Ranges of which every match of a parsed sequence holds a character: the fewest of any one of its
    parts that must match; None when no part must."""
    best = None
    for op, av in items:
        found = _required_by(op, av, ignore_case)
        if found is not None and (best is None or _width(found) < _width(best)):
            best = found
    return best


def _width(ranges: list[tuple[int, int]]) -> int:
    return sum(b - a + 1 for a, b in ranges)


def _required_by(op, av, ignore_case: bool) -> list[tuple[int, int]] | None:
    if op is _sre.LITERAL:
        return _cased(av, av, ignore_case)
    if op is _sre.IN:
        out: list[tuple[int, int]] = []
        for item, value in av:
            found = (_cased(value, value, ignore_case) if item is _sre.LITERAL
                     else _cased(*value, ignore_case) if item is _sre.RANGE
                     else _CATEGORIES.get(value) if item is _sre.CATEGORY else None)  # NEGATE: unknown
            if found is None:
                return None
            out += found
        return out
    if op is _sre.SUBPATTERN:
        _, add, remove, inner = av
        return _required(inner, (ignore_case or bool(add & re.IGNORECASE)) and not remove & re.IGNORECASE)
    if op is _sre.BRANCH:
        out = []
        for branch in av[1]:
            found = _required(branch, ignore_case)
            if found is None:
                return None
            out += found
        return out
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT):
        return _required(av[2], ignore_case) if av[0] >= 1 else None
    if op is _sre.ATOMIC_GROUP:
        return _required(av, ignore_case)
    return None  # ANY, anchors, lookarounds, back references: nothing required


def required_characters(pattern: re.Pattern) -> re.Pattern | None:
    """A character class of which every match of `pattern` (compiled with re.ASCII) holds a character."""
    if not pattern.flags & re.ASCII:
        return None
    found = _required(_sre_parse.parse(pattern.pattern, pattern.flags), bool(pattern.flags & re.IGNORECASE))
    if not found:
        return None
    return re.compile("[" + "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "")
                                    for a, b in sorted(set(found))) + "]")


_NEEDS = [required_characters(pattern) for _, pattern, _ in _RULES]

@dataclass(frozen=True)
class Redacted:
    """The text with typed placeholders and how many of each kind were replaced."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)


def redact(text: str | None, known: Iterable[str] = ()) -> Redacted | None:
    """None for None/empty. `known` = identifiers of the author known from the restricted patients table
    (full name, phone, email, address, patient id); each is replaced wherever it appears, also with
    spaces/dashes inside phone numbers, case-insensitive for Latin text."""
    if text is None or not str(text).strip():
        return None
    out = str(text)
    if _FULLWIDTH_RE.search(out):
        out = out.translate(_FULLWIDTH)
    known_rules = _known_rules(known, out)
    counts: Counter = Counter()
    for _ in range(MAX_PASSES):
        before = out
        out = _one_pass(out, known_rules, counts)
        if out == before:
            break
    return Redacted(out, dict(counts))


def redact_many(texts: Sequence[str | None], known: Sequence[Iterable[str]] | None = None) -> list[Redacted | None]:
    """`redact` over a column; `known[i]` are the identifiers of the author of `texts[i]`."""
    if known is not None and len(known) != len(texts):
        raise ValueError(f"known has {len(known)} entries for {len(texts)} texts")
    seen: dict[str, Redacted | None] = {}  # comments repeat; those holding none of their author's identifiers are done once
    out: list[Redacted | None] = []
    for i, text in enumerate(texts):
        ids = list(known[i]) if known is not None and known[i] is not None else []
        if ids and isinstance(text, str) and not _holds_known(ids, text):
            ids = []
        if ids or not isinstance(text, str):
            out.append(redact(text, ids))
            continue
        if text not in seen:
            seen[text] = redact(text)
        out.append(seen[text])
    return out


def _one_pass(text: str, known_rules: list[tuple[str, re.Pattern]], counts: Counter) -> str:
    for kind, pattern in known_rules:
        text = _apply(pattern, kind, text, counts)
    text, found = _rules_pass(text)
    for kind, n in found:
        counts[kind] += n
    return text


@lru_cache(maxsize=1 << 17)
def _rules_pass(text: str) -> tuple[str, tuple[tuple[str, int], ...]]:
    """The pattern rules and jieba's names over `text`, and what they replaced (in the order first found).
    Remembered: a text is seen again in the next pass, and texts that differed only in an identifier of
    their author are the same text once it is replaced."""
    counts: Counter = Counter()
    for (kind, pattern, check), needs in zip(_RULES, _NEEDS):
        if needs is None or needs.search(text):
            text = _apply(pattern, kind, text, counts, _CHECKS[check] if check else None)
    if _HAS_CJK.search(text):
        text = _jieba_names(text, counts)
    return text, tuple(counts.items())


def _apply(pattern: re.Pattern, kind: str, text: str, counts: Counter, check=None) -> str:
    """Replace each match (or its group `v`) by `[kind]`; `check(value)` may veto a match (None) or
    return how many leading words of the value to replace (English names keep trailing common words)."""
    has_v = "v" in pattern.groupindex

    def repl(m: re.Match) -> str:
        s, e = m.span("v") if has_v else m.span()
        value, rest = m.string[s:e], ""  # rest: common words kept after an English name
        if check is not None:
            n_words = check(value)
            if not n_words:
                return m.group(0)
            tail = value.split()[n_words:] if n_words is not True else []
            rest = " " + " ".join(tail) if tail else ""
        counts[kind] += 1
        return m.string[m.start():s] + f"[{kind}]" + rest + m.string[e:m.end()]

    return pattern.sub(repl, text)


def _name_words(value: str) -> int:
    """How many leading words of a capitalised run are not common capitalised words."""
    n = 0
    for word in value.split():
        if word in _EN_STOP:
            break
        n += 1
    return n


def _en_name(value: str) -> int:
    if value.islower():  # "dr smith" in a search query, but not "dr was late"
        return 0 if value in _EN_LOWER_STOP else 1
    return _name_words(value)


def _en_pair(value: str) -> int:
    n = _name_words(value)
    return n if n >= 2 else 0


_NAME_TAGS = ("nr", "ns", "nz")  # jieba's dictionary files many given names as places or proper nouns


def _cn_name(value: str) -> bool:
    """A Chinese name candidate found after a cue, unless jieba's dictionary knows it as another word."""
    if len(value) == 1:
        return True
    _, freq, tags = _posseg()
    for cand in (value, value[:2]):
        tag = tags.get(cand)
        if tag and freq.get(cand, 0) >= 50 and not tag.startswith(_NAME_TAGS):
            return False
    return True


def _cn_name_strict(value: str) -> bool:
    """`_cn_name` after a weaker cue (感谢, a role word), where words such as 康复 or 高超 are not names."""
    return value not in _NOT_NAMES and not value.startswith(("谢谢", "多谢")) and _cn_name(value)


def _cn_alone(value: str) -> bool:
    """A surname-led fragment without a cue: a name unless it is a known word (names jieba knows are rare words)."""
    if value[1:] in ROLE_WORDS or value[-2:] in ROLE_WORDS:
        return False
    _, freq, tags = _posseg()
    f, tag = freq.get(value), tags.get(value)
    if not f or f < 20:
        return True
    return tag.startswith(_NAME_TAGS) and tag != "nrt" and f < 2 * _NR_MAX_FREQ


_CHECKS = {"cn": _cn_name, "cn_strict": _cn_name_strict, "alone": _cn_alone, "en": _en_name, "pair": _en_pair}


# ---- known identifiers of the author ---------------------------------------------------------------

_KNOWN_DATE = re.compile(r"((?:19|20)\d{2})[\-/.年](\d{1,2})[\-/.月](\d{1,2})日?(?:[ T][\d:.]+)?")


def _known_kind(value: str) -> str:
    if "@" in value:
        return "EMAIL"
    if _KNOWN_DATE.fullmatch(value):
        return "DATE"
    digits = sum(c.isdigit() for c in value)
    if digits >= 7 and re.fullmatch(r"[\d\s\-+().]+", value):
        return "PHONE"
    if re.search(r"\d", value) and (re.search("[路街道号室栋弄巷楼区市省]", value)
                                    or re.search(r"\s", value) and re.search(r"[A-Za-z]{3,}", value)):
        return "ADDRESS"
    if re.search(r"\d", value):
        return "ID_NUMBER"
    return "NAME"


def _might_contain(text: str, value: str, kind: str) -> bool:
    """A cheap test before a pattern is compiled: most comments hold none of their author's identifiers."""
    if kind == "PHONE":
        digits = re.sub(r"\D", "", value)
        return digits[-7:] in re.sub(r"\D", "", text)
    if kind == "DATE":
        return value[:4] in text
    squash = re.compile(r"[\s\-]")
    hay = squash.sub("", text.lower())
    if kind == "NAME" and not _HAS_CJK.search(value):
        return any(part.lower() in hay for part in value.split())
    if kind == "NAME" and len(value) == 3:
        return value[1:] in hay
    return squash.sub("", value.lower()) in hay


# An author's patterns, compiled once per spelling: names and birth dates recur among authors, and there are
# more of them than the re module's own cache holds.
_compiled = lru_cache(maxsize=1 << 15)(re.compile)


def _known_values(known: Iterable[str]) -> list[str]:
    return sorted({str(k).strip() for k in (known or ()) if k is not None and len(str(k).strip()) >= 2},
                  key=len, reverse=True)


def _holds_known(known: Iterable[str], text: str) -> bool:
    """Whether `_known_rules` would give any rule, without compiling them."""
    return any(_might_contain(text, value, _known_kind(value)) for value in _known_values(known))


def _known_rules(known: Iterable[str], text: str) -> list[tuple[str, re.Pattern]]:
    rules: list[tuple[str, re.Pattern]] = []
    for value in _known_values(known):
        kind = _known_kind(value)
        if not _might_contain(text, value, kind):
            continue
        if kind == "PHONE":
            digits = re.sub(r"\D", "", value)
            if value.lstrip().startswith(("+", "00")) and len(digits) > 10:  # drop the country code
                digits = re.sub(r"^(?:00)?(?:86|852|853|886|44|1)", "", digits)
            body = r"[\s\-().]*".join(digits)
            rules.append((kind, _compiled(rf"(?<!\d)(?:(?:\+|00)\s*\d{{1,3}}[\s\-]*)?\(?{body}(?!\d)")))
        elif kind == "DATE":  # a birth date in any of its spellings: 1985-03-02, 1985/3/2, 1985年3月2日
            y, m, d = _KNOWN_DATE.fullmatch(value).groups()
            rules.append((kind, _compiled(rf"(?<!\d){y}\s*[\-/.年]\s*0?{int(m)}\s*[\-/.月]\s*0?{int(d)}(?:\s*[日号])?(?!\d)")))
        elif kind == "NAME" and not _HAS_CJK.search(value):
            parts = value.split()
            rules.append((kind, _compiled(r"(?<![A-Za-z])" + r"[\s.,]*".join(map(re.escape, parts)) + r"(?![A-Za-z])", re.IGNORECASE)))
            if len(parts) > 1:  # also each capitalised part on its own ("Mr Smith", "John")
                for part in sorted(parts, key=len, reverse=True):
                    if len(part) >= 3:
                        rules.append((kind, _compiled(rf"(?<![A-Za-z]){re.escape(part.capitalize())}(?![A-Za-z])|"
                                                       rf"(?<![A-Za-z]){re.escape(part.upper())}(?![A-Za-z])")))
        elif kind == "NAME":
            rules.append((kind, _compiled(r"\s*".join(re.escape(c) for c in value.replace(" ", "")))))
            if len(value) == 3 and value[0] in SURNAMES:  # the given name alone ("小明")
                rules.append((kind, _compiled(re.escape(value[1:]))))
        elif kind == "ID_NUMBER":
            rules.append((kind, _compiled(r"[\s\-]?".join(re.escape(c) for c in value.replace(" ", "")), re.IGNORECASE)))
        else:
            rules.append((kind, _compiled(r"\s*".join(map(re.escape, value.split())), re.IGNORECASE)))
    return rules


# ---- Chinese names with jieba ------------------------------------------------------------------

_JIEBA = None


def _posseg():
    """jieba.posseg, imported and initialised once, on first use."""
    global _JIEBA
    if _JIEBA is None:
        import jieba
        import jieba.posseg as pseg

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _JIEBA = (pseg, jieba.dt.FREQ, pseg.dt.word_tag_tab)
    return _JIEBA


def _is_cjk(word: str) -> bool:
    return bool(word) and all("\u4e00" <= c <= "\u9fff" for c in word)


def _starts_with_surname(word: str) -> bool:
    return word[:1] in SURNAMES or word[:2] in SURNAMES


def _role_suffix(word: str) -> str:
    for role in ROLE_WORDS:
        if word.endswith(role) and len(word) > len(role):
            return role
    return ""


_CUE_BEFORE = frozenset("叫 找 感谢 谢谢 多谢 感激 表扬 投诉 举报 患者 病人 家属 联系人 姓名 签名 名叫 叫做".split())
_CUE_AFTER = frozenset("说 讲 告诉 帮 帮忙 回复 回答 解释 介绍 推荐 安排 开的 负责".split())
_NOT_GIVEN_TAGS = ("v", "d", "p", "u", "c", "r", "m", "q", "x", "y", "e", "f")  # tags a given name never has
_COMMON_MIN_FREQ = 1000  # a name's first two characters are rarely this common a word ("黄金周", "严重性")


def _is_name_token(word: str, flag: str, prev: str, nxt: str, before_role: bool) -> bool:
    """Whether a jieba token tagged as a person's name (`nr`, `nrfg`; not transliterations) is one.

    jieba's dictionary tags many ordinary words as names (顾客, 齐全, 关怀, 陈旧, 孙女), so a two-character
    dictionary "name" counts only next to a cue or a role word, or when the dictionary calls it rare;
    names jieba guessed itself (not in the dictionary, e.g. 王芳) and three-character ones count."""
    if not flag.startswith("nr") or flag == "nrt" or word in _NOT_NAMES or not _starts_with_surname(word):
        return False
    _, freq, tags = _posseg()
    f = freq.get(word) or 0
    if not f:
        return True
    if len(word) == 2:
        return f < 50 or prev in _CUE_BEFORE or before_role or nxt in _CUE_AFTER
    head = word[:2]
    if freq.get(head, 0) >= _COMMON_MIN_FREQ and not tags.get(head, "nr").startswith("nr"):
        return False
    return f < _NR_MAX_FREQ or prev in _CUE_BEFORE or before_role or nxt in _CUE_AFTER


_CLAUSE_SPLIT = re.compile(r"([，。！？；、,!?;\n]+)")
_SURNAME_START = frozenset(s[0] for s in SURNAMES) | frozenset("小老")


def _jieba_names(text: str, counts: Counter) -> str:
    """Names found by jieba, clause by clause (comments repeat their clauses, so each is tagged once)."""
    out = []
    for part in _CLAUSE_SPLIT.split(text):
        if part and _HAS_CJK.search(part) and not _SURNAME_START.isdisjoint(part):
            part, found = _jieba_clause(part)
            if found:
                counts["NAME"] += found
        out.append(part)
    return "".join(out)


@lru_cache(maxsize=1 << 16)
def _jieba_clause(text: str) -> tuple[str, int]:
    counts: Counter = Counter()
    return _jieba_tokens(text, counts), counts["NAME"]


def _jieba_tokens(text: str, counts: Counter) -> str:
    pseg, freq, _ = _posseg()
    tokens = [(w.word, w.flag) for w in pseg.cut(text)]
    out: list[str] = []
    i = 0
    while i < len(tokens):
        word, flag = tokens[i]
        prev = tokens[i - 1][0] if i else ""
        nxt, nxt_flag = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        before_role = nxt.startswith(ROLE_WORDS)
        replaced, step = None, 1
        if _is_cjk(word) and word not in _NOT_NAMES:
            role = _role_suffix(word)
            stem = word[: len(word) - len(role)]
            if role and flag.startswith("nr") and len(stem) <= 3 and _starts_with_surname(stem):
                replaced = "[NAME]" + role  # 王大夫, 林护士: one token
            elif len(word) == 1 and word in SURNAMES and flag.startswith("nr") and _is_cjk(nxt) and len(nxt) <= 2 \
                    and not nxt.startswith(ROLE_WORDS) and not nxt_flag.startswith(_NOT_GIVEN_TAGS) \
                    and freq.get(nxt, 0) < _COMMON_MIN_FREQ:
                replaced, step = "[NAME]", 2  # 王 / 秀英: a surname and a given name split apart
            elif _is_name_token(word, flag, prev, nxt, before_role):
                replaced = "[NAME]"
            elif before_role and len(word) <= 3 and _starts_with_surname(word) \
                    and (len(word) == 1 or word in SURNAMES or not freq.get(word)):
                replaced = "[NAME]"  # 张 / 医生, 欧阳 / 医生, 王小 / 医生
            elif len(word) == 2 and word[0] in "小老" and word[1] in SURNAMES \
                    and (flag.startswith("nr") or flag == "n" or not freq.get(word)):
                replaced = "[NAME]"  # 小张, 老王
        if replaced is not None:
            counts["NAME"] += 1
            out.append(replaced)
        else:
            out.extend(t for t, _ in tokens[i:i + step])
        i += step
    return "".join(out)
