"""The LLM prompt for adapting a handbook script to the moment.

The system message never changes, so the generator caches its KV prefix once; the user message is kept
short (the customer's turn, the script, one or two trimmed passages) because every prompt token costs
prefill time on a 2-core CPU.
"""

from __future__ import annotations

from collections.abc import Sequence

from copilot.suggest.llm import ChatMessage

SYSTEM_PROMPT = (
    "你是家电售后客服的话术助手。根据客户刚说的话、手册条款和标准话术，写出坐席下一句要说的话。"
    "要求：最多两句，简短、礼貌、口语化；只用条款和话术里的信息；"
    "不要承诺条款里没有的金额、时间、退款或赔偿；不要加解释，只输出这句话。"
)
MAX_PASSAGE_CHARS = 100  # the script carries most of the meaning; every prompt token costs prefill time
MAX_PASSAGES = 1  # the script's own (or the best) passage
MAX_CUSTOMER_CHARS = 80


def suggestion_messages(
    customer_turn: str, script: str, passages: Sequence[str], address: str
) -> list[ChatMessage]:
    clauses = "\n".join(f"- {text[:MAX_PASSAGE_CHARS]}" for text in passages[:MAX_PASSAGES])
    # Only a known name is worth a line: told to address the customer as plain 您, the 0.5B model opened
    # with a dangling 「您，」 (3 of 54 rewrites of the realsuggest test part).
    addressed = f"称呼客户为：{address}\n" if address and address != "您" else ""
    user = (
        f"客户刚说：{customer_turn[-MAX_CUSTOMER_CHARS:]}\n"
        f"手册条款：\n{clauses}\n"
        f"标准话术：{script}\n"
        f"{addressed}"
        "坐席回复："
    )
    return [ChatMessage("system", SYSTEM_PROMPT), ChatMessage("user", user)]
