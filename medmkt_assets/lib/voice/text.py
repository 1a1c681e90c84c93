"""Tokens of de-identified survey comments, Chinese and English alike.

Chinese runs are cut by jieba (its dictionary ships with the package, so this works offline);
Latin runs are lower-cased words. Topic models want content words only, so `tokenize` drops
stop words of both languages, the de-identification placeholders ([PHONE], [NAME], ...),
punctuation, numbers and single Latin letters. Sentiment needs what `tokenize` throws away
(negators, intensifiers, "but", clause breaks), so `raw_tokens` keeps them.
"""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from functools import lru_cache

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

PLACEHOLDER = re.compile(r"\[[A-Z][A-Z_]*\]")
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_CHAR = re.compile(f"[{CJK}]")
_LATIN_CHAR = re.compile(r"[A-Za-z]")
# a CJK run, a Latin word (with an apostrophe part: don't, patient's), or a clause break
_PIECE = re.compile(f"[{CJK}]+|[A-Za-z]+(?:['’][A-Za-z]+)*|[,.;:!?，。；：！？、…~～\n]")
CLAUSE_BREAK = "|"
# a number written in Chinese, alone or with a measure word: 两个, 三天, 十几分钟 says nothing on a topic
_CJK_NUMBER = re.compile(r"^[零一二三四五六七八九十百千万两几半多]+[个次天点分号位年月周岁]?$")

ENGLISH_FILLER = frozenset({
    "very", "really", "just", "quite", "pretty", "lot", "lots", "bit", "overall", "thing", "things",
    "ok", "okay", "also", "got", "get", "gets", "did", "does", "doing", "dont", "don't", "im", "i'm", "ive",
    "i've", "it's", "its", "was", "were", "would", "could", "will", "can", "can't", "didn't", "wasn't",
    "isn't", "aren't", "won't", "like", "still", "even", "much", "one", "make", "made", "said", "say",
    "went", "go", "going", "let", "us", "let's", "there's", "that's", "they're", "we're", "you're",
    # generic praise or blame names no topic; the sentiment module reads raw_tokens, which keeps them
    "good", "great", "nice", "bad", "fine", "excellent", "thanks", "thank",
})
ENGLISH_STOP = frozenset(ENGLISH_STOP_WORDS) | ENGLISH_FILLER
CHINESE_STOP = frozenset(["的", "地", "得", "了", "着", "过", "很", "也", "都", "就", "是", "在", "和", "与", "及", "或", "有", "我", "我们", "你", "你们", "您", "他", "她", "它", "他们", "她们", "它们", "这", "那", "这个", "那个", "这些", "那些", "这里", "那里", "这次", "那次", "还", "又", "太", "比较", "非常", "一般", "一些", "有些", "有点", "有点儿", "一点", "一下", "但", "但是", "可是", "不过", "然后", "因为", "所以", "而且", "并且", "如果", "虽然", "就是", "还是", "或者", "吧", "呢", "啊", "吗", "哦", "嗯", "呀", "哈", "哈哈", "啦", "嘛", "哎", "唉", "么", "个", "把", "被", "给", "让", "对", "从", "到", "向", "跟", "比", "为", "为了", "以", "之", "其", "其他", "自己", "大家", "什么", "怎么", "怎么样", "这样", "那样", "这么", "那么", "可以", "可能", "应该", "需要", "觉得", "感觉", "认为", "一直", "已经", "总是", "每次", "每", "各", "些", "再", "才", "只", "只是", "更", "最", "挺", "蛮", "真", "真的", "确实", "特别", "十分", "相当", "实在", "简直", "完全", "一样", "时候", "东西", "事情", "情况", "方面", "问题", "整体", "总体", "总的来说", "总之", "其实", "当然", "毕竟", "而", "并", "又是", "还有", "以及", "等等", "之后", "以后", "之前", "以前", "上", "下", "里", "中", "内", "外", "多", "少", "整个", "这家", "那家", "次", "来", "去", "说", "看", "做", "用", "要", "会", "能", "想", "没", "不", "没有", "未", "别", "无", "非", "请", "才", "好", "很好", "挺好", "不错", "满意", "还行", "还可以", "行", "谢谢", "感谢"])


def language(text: str) -> str:
    """"zh" when CJK characters dominate, else "en".

    One Chinese character carries about as much as a short English word, so the comparison is
    CJK characters against Latin letters / 3 (roughly letters per syllable); placeholders such as
    [PHONE] are Latin letters that say nothing about the language and are ignored.
    """
    body = PLACEHOLDER.sub(" ", text or "")
    n_cjk = len(_CJK_CHAR.findall(body))
    n_latin = len(_LATIN_CHAR.findall(body))
    return "zh" if n_cjk > 0 and 3 * n_cjk >= n_latin else "en"


_jieba = None
_jieba_lock = threading.Lock()


def _cut(run: str) -> list[str]:
    """jieba's words for a run of CJK characters; jieba is loaded once, quietly, on first use."""
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba
                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba.lcut(run)


def raw_tokens(text: str) -> list[str]:
    """Every word of `text` in order (lower-cased, CJK by jieba) with CLAUSE_BREAK for punctuation.

    Placeholders, numbers and symbols are gone; stop words, negators and intensifiers stay, which is
    what negation handling and the sentiment model's bigrams need.
    """
    return list(_raw_tokens(text or ""))


@lru_cache(maxsize=1 << 16)
def _raw_tokens(text: str) -> tuple[str, ...]:
    """Remembered: the topic model and the sentiment model read the same comments, and comments repeat."""
    out: list[str] = []
    for piece in _PIECE.findall(PLACEHOLDER.sub(" , ", text or "")):
        if _CJK_CHAR.match(piece):
            out.extend(w for w in _cut(piece) if w.strip())
        elif _LATIN_CHAR.match(piece):
            out.append(piece.lower().replace("’", "'"))
        elif not out or out[-1] != CLAUSE_BREAK:
            out.append(CLAUSE_BREAK)
    return tuple(out)


def is_content(token: str) -> bool:
    """A token that can name a topic: not a stop word, a number, a clause break or a single letter."""
    if token == CLAUSE_BREAK:
        return False
    if _CJK_CHAR.match(token):
        return token not in CHINESE_STOP and not _CJK_NUMBER.match(token)
    return len(token) > 1 and token not in ENGLISH_STOP and "'" not in token


def tokenize(text: str) -> list[str]:
    """Content words of one comment, both languages (the tokenizer the topic model uses)."""
    return [t for t in raw_tokens(text) if is_content(t)]


def tokenize_many(texts: Iterable[str]) -> list[list[str]]:
    """`tokenize` for each text."""
    return [tokenize(t) for t in texts]
