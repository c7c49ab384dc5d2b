"""A fixed text corpus for tokenizer parity: code, whitespace, digits, scripts, emoji, specials,
and words that Llama 3 keeps whole only because it looks whole pieces up before merging
(with Hugging Face's ``ignore_merges`` off, " Việt" is 3 tokens instead of 101798)."""
from __future__ import annotations

TOKENIZER_CORPUS: tuple[str, ...] = (
    "Hello world",
    " Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "She said it's fine; they're here, we'll see what you've done and I'd go.",
    "IT'S LOUD, DON'T SHOUT. We'Re MiXeD cAsE",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "int main(void) {\n\treturn printf(\"hello, world\\n\");\n}\n",
    "SELECT name, count(*) FROM users WHERE age >= 21 GROUP BY name;",
    "a  b   c    d\t\te\n\n\nf \n g\r\nh",
    "   leading spaces and trailing spaces   ",
    "\n\n\n",
    "Numbers: 3.14159, 2024, 8192, 1,000,000, 1234567890 and 007.",
    "Café déjà vu, naïve façade, über straße, señor niño, ça va?",
    "Ωμέγα, Привет мир, שלום, مرحبا",
    "你好，世界。我们在本地运行模型。日本語のテキスト。한국어 문장.",
    "Emoji: 🦙🚀✨👍🏽 and 🇫🇷 flags, 👩‍👩‍👧‍👦 family.",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>",
    "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|end_of_text|>",
    "mixed<|eot_id|>text<|eom_id|>and <|python_tag|>code",
    "URL https://example.com/path?q=1&r=two#frag and e-mail a.b@example.org",
    "''' \"\"\" ``` ~~~ !!! ??? ... --- ___ *** ### @@@",
    "x=1;y=2;print(x+y)#comment",
    # Whole pieces in Meta's vocabulary that its merges do not reach.
    " Tiếng Việt, soubor, sektör, Merkez Üniversitesi, nhiệm, tekrar, vzdělávání",
    " ремонт 5 октября, 오후 اقدام",
    "しない",
)
