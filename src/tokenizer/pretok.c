/* pretok.c - the byte-level BPE pre-tokenizers: which regexes split text
 * into words for each tokenizer.ggml.pre name, compiled with PCRE2 (UTF + UCP,
 * JIT when available), and the splitting itself.
 *
 * The patterns are llama.cpp's (llama-vocab.cpp), including its adaptations
 * (case-insensitive contractions written as [sS] classes, letter case by
 * lookahead), so that words and therefore ids agree with it. Two rewrites make
 * PCRE2 see what llama.cpp's engine sees: \s and \S mean Unicode White_Space
 * (PCRE2's \s also takes U+180E), and \p{Lu}/\p{Ll}/\p{Lt}/\p{Lm}/\p{Lo} mean
 * \p{L} (llama.cpp has one letter class).
 * Every regex splits every current piece into its matches and the gaps
 * between them, in order, as llama.cpp's unicode_regex_split does.
 * Does not hold: the merges (bpe.c) or input sanitising (tokenize.c).
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_int.h"

/* ---- patterns (facts from llama.cpp) ------------------------------------ */

/* One line each, byte for byte as in llama-vocab.cpp, so they can be compared. */

#define RE_LLAMA3 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_JAIS2 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}"
#define RE_CRLF "[\r\n]"
#define RE_DSLLM_LETTERS "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+"
#define RE_DSLLM_PUNCT "\\s?[!-/:-~！-／：-～‘-‟　-。]+"
#define RE_TRAIL_SPACE "\\s+$"
#define RE_CJK_HANGUL "[一-龥ࠀ-一가-퟿]+"
#define RE_DIGITS "\\p{N}+"
#define RE_DIGITS3 "\\p{N}{1,3}"
#define RE_CJK_KANA "[一-龥぀-ゟ゠-ヿ]+"
#define RE_DSV3_MAIN "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"
#define RE_YOUTU_CJK "[가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥぀-ゟ゠-ヿ]+"
#define RE_YOUTU_MAIN "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_SPACE_LETTERS "\\s?\\p{L}+"
#define RE_SPACE_PUNCT "\\s?\\p{P}+"
#define RE_DIGIT "\\p{N}"
#define RE_FALCON_PUNCT "[\\p{P}\\$\\+<=>\\^~\\|`]+"
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_THREE_DIGITS "[0-9][0-9][0-9]"
#define RE_QWEN2 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN35 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_PORO " ?[^(\\s|.,!?…。，、।۔،)]+"
#define RE_TEKKEN "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_CHAMELEON_SENTINEL "<sentinel:[0-9]+>"
#define RE_CHAMELEON_IMAGE "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z"
#define RE_CHAMELEON_SPACE "([\\t\\n]|    |  )"
#define RE_CHAMELEON_PUNCT "[\\p{P}!-/:-@\\[-`{-~]"
#define RE_GPT4O "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_GRANITE_EMB "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))*((?=[\\p{L}\\p{M}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))+((?=[\\p{L}\\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_BAILING "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"
#define RE_SEED_CODER "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_EXAONE_MOE "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"
#define RE_MINICPM5 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_DEFAULT_PUNCT "[\\p{P}\\$\\+<=>\\^~\\|]+"

/* Pre-tokenizer flags beyond the regexes (llama.cpp's load()). */
enum {
    PRE_IGNORE_MERGES = 1, /* a word that is a token is emitted whole */
    PRE_ADD_BOS = 2,       /* add_bos defaults to true */
    PRE_NO_BOS = 4,        /* no BOS unless the metadata names one */
};

struct pre_def {
    const char *name;  /* the name the converter writes for this set */
    const char *names; /* '|'-separated tokenizer.ggml.pre values */
    const char *re[EA__TOK_MAX_REGEX];
    unsigned flags;
};

static const struct pre_def pre_defs[] = {
    {"default", "default", {RE_DEFAULT_PUNCT, RE_GPT2, RE_DIGITS, RE_THREE_DIGITS}, 0},
    {"llama3", "llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2|jina-v5-nano",
     {RE_LLAMA3}, PRE_IGNORE_MERGES | PRE_ADD_BOS},
    {"dbrx", "dbrx|smaug-bpe", {RE_LLAMA3}, 0},
    {"glm4", "glm4|chatglm-bpe", {RE_LLAMA3}, PRE_NO_BOS},
    {"jais-2", "jais-2", {RE_JAIS2}, 0},
    {"deepseek-llm", "deepseek-llm",
     {RE_CRLF, RE_DSLLM_LETTERS, RE_DSLLM_PUNCT, RE_TRAIL_SPACE, RE_CJK_HANGUL, RE_DIGITS}, 0},
    {"deepseek-v3", "deepseek-v3|hunyuan-dense|joyai-llm", {RE_DIGITS3, RE_CJK_KANA, RE_DSV3_MAIN}, 0},
    {"youtu", "youtu", {RE_YOUTU_CJK, RE_YOUTU_MAIN}, PRE_IGNORE_MERGES},
    {"deepseek-coder", "deepseek-coder", {RE_CRLF, RE_SPACE_LETTERS, RE_SPACE_PUNCT, RE_CJK_HANGUL, RE_DIGIT}, 0},
    {"falcon", "falcon", {RE_FALCON_PUNCT, RE_GPT2, RE_THREE_DIGITS}, 0},
    {"starcoder", "starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b|mellum2",
     {RE_DIGIT, RE_GPT2}, 0},
    {"gpt-2", "gpt-2|phi-2|jina-es|jina-de|gigachat|jina-v2-es|jina-v2-de|a.x-4.0|mellum|modern-bert|"
     "mpt|olmo|jais|trillion|granite-docling|exaone4|jina-v1-en|jina-v2-code|roberta-bpe",
     {RE_GPT2}, 0},
    {"qwen2", "qwen2|deepseek-r1-qwen|kormo|f2llmv2|stablelm2|hunyuan|solar-open|megrez|grok-2",
     {RE_QWEN2}, 0},
    {"qwen35", "qwen35", {RE_QWEN35}, 0},
    {"poro-chat", "poro-chat|bloom|gpt3-finnish", {RE_PORO}, 0},
    {"viking", "viking", {RE_PORO, RE_DIGIT}, 0},
    {"tekken", "tekken", {RE_TEKKEN}, PRE_IGNORE_MERGES | PRE_ADD_BOS},
    {"chameleon", "chameleon",
     {RE_CHAMELEON_SENTINEL, RE_CHAMELEON_IMAGE, RE_CHAMELEON_SPACE, RE_DIGIT,
      RE_CHAMELEON_PUNCT, RE_GPT2},
     PRE_ADD_BOS},
    {"gpt-4o", "gpt-4o|llama4|kanana2|talkie|minimax-m2", {RE_GPT4O}, 0},
    {"granite-embed-multi-97m", "granite-embed-multi-97m", {RE_GRANITE_EMB}, PRE_IGNORE_MERGES},
    {"bailingmoe", "bailingmoe|bailingmoe2|llada-moe", {RE_BAILING}, 0},
    {"seed-coder", "seed-coder", {RE_SEED_CODER}, 0},
    {"exaone-moe", "exaone-moe", {RE_EXAONE_MOE}, 0},
    {"minicpm5", "minicpm5", {RE_DIGITS3, RE_MINICPM5}, PRE_IGNORE_MERGES},
};

static bool name_in(const char *names, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = names; *p;) {
        const char *bar = strchr(p, '|');
        size_t k = bar ? (size_t)(bar - p) : strlen(p);
        if (k == n && memcmp(p, name, n) == 0)
            return true;
        if (!bar)
            break;
        p = bar + 1;
    }
    return false;
}

static const struct pre_def *find_def(const char *pre)
{
    for (size_t i = 0; i < sizeof pre_defs / sizeof pre_defs[0]; i++)
        if (name_in(pre_defs[i].names, pre))
            return &pre_defs[i];
    return NULL;
}

bool ea__pretok_known(const char *pre) { return pre && find_def(pre); }

const char *ea__pretok_from_regexes(const char *const *re, unsigned n)
{
    for (size_t i = 0; i < sizeof pre_defs / sizeof pre_defs[0]; i++) {
        const struct pre_def *d = &pre_defs[i];
        unsigned k = 0;
        while (k < EA__TOK_MAX_REGEX && d->re[k])
            k++;
        if (k != n)
            continue;
        bool same = true;
        for (unsigned j = 0; j < n && same; j++)
            same = strcmp(d->re[j], re[j]) == 0;
        if (same)
            return d->name;
    }
    return NULL;
}

/* Regexes as tokenizer.json files write them (llama.cpp adapts some before
 * use), with the pre-tokenizer name llama.cpp's converter gives them. */
static const struct {
    const char *regex, *pre;
} hf_regexes[] = {
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
     "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", "llama-bpe"},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
     "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", "qwen2"},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+"
     "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", "qwen35"},
    {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|"
     "'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}"
     "\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|"
     "\\s+(?!\\S)|\\s+", "gpt-4o"},
    {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|"
     "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|"
     "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", "tekken"},
};

const char *ea_tokenizer_pre_from_regex(const char *regex)
{
    if (!regex)
        return NULL;
    for (size_t i = 0; i < sizeof hf_regexes / sizeof hf_regexes[0]; i++)
        if (strcmp(hf_regexes[i].regex, regex) == 0)
            return hf_regexes[i].pre;
    return ea__pretok_from_regexes(&regex, 1);
}

/* ---- pattern rewrite ---------------------------------------------------- */

/* Unicode White_Space, as llama.cpp's \s (and Hugging Face's Rust regex). */
#define WS_CLASS "\\t-\\r\\x20\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}" \
                 "\\x{202f}\\x{205f}\\x{3000}"

static bool put(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    if (*o + n >= cap)
        return false;
    memcpy(out + *o, s, n);
    *o += n;
    return true;
}

/* Rewrites \s, \S and the letter sub-categories (see the file comment).
 * False when out is too small or \S appears inside a class. */
static bool rewrite(const char *re, char *out, size_t cap)
{
    size_t o = 0;
    bool in_class = false;
    for (size_t i = 0; re[i];) {
        char c = re[i];
        if (c == '\\' && re[i + 1]) {
            char e = re[i + 1];
            bool ok = true;
            if (e == 's')
                ok = in_class ? put(out, cap, &o, WS_CLASS, strlen(WS_CLASS))
                              : put(out, cap, &o, "[" WS_CLASS "]", strlen(WS_CLASS) + 2);
            else if (e == 'S' && !in_class)
                ok = put(out, cap, &o, "[^" WS_CLASS "]", strlen(WS_CLASS) + 3);
            else if (e == 'S')
                return false;
            else if (e == 'p' && re[i + 2] == '{' && re[i + 3] == 'L' && re[i + 4] &&
                     strchr("ultmo", re[i + 4]) && re[i + 5] == '}') {
                ok = put(out, cap, &o, "\\p{L}", 5);
                i += 6;
                if (!ok)
                    return false;
                continue;
            } else
                ok = put(out, cap, &o, re + i, 2);
            if (!ok)
                return false;
            i += 2;
            continue;
        }
        if (c == '[' && !in_class)
            in_class = true;
        else if (c == ']' && in_class)
            in_class = false;
        if (!put(out, cap, &o, re + i, 1))
            return false;
        i++;
    }
    out[o] = '\0';
    return true;
}

/* ---- setup -------------------------------------------------------------- */

static void *pcre_alloc(size_t n, void *ctx)
{
    (void)ctx;
    return ea_malloc(n);
}

static void pcre_free(void *p, void *ctx)
{
    (void)ctx;
    ea_free(p);
}

ea_status ea__pretok_setup(ea_tokenizer *t, const char *pre, struct ea_error *err)
{
    const struct pre_def *def = find_def(pre);
    if (!def)
        return ea_error_set(err, EA_EUNSUPPORTED, "unknown pre-tokenizer '%s' (tokenizer.ggml.pre)",
                            pre);
    t->ignore_merges = def->flags & PRE_IGNORE_MERGES;
    if (def->flags & PRE_ADD_BOS)
        t->add_bos = true;
    if (def->flags & PRE_NO_BOS)
        t->bos = -1;

    pcre2_general_context *gc = pcre2_general_context_create(pcre_alloc, pcre_free, NULL);
    pcre2_compile_context *cc = gc ? pcre2_compile_context_create(gc) : NULL;
    if (!cc) {
        pcre2_general_context_free(gc);
        return ea_error_set(err, EA_ENOMEM, "out of memory for the pre-tokenizer");
    }
    ea_status s = EA_OK;
    for (unsigned i = 0; i < EA__TOK_MAX_REGEX && def->re[i]; i++) {
        char pat[4096];
        if (!rewrite(def->re[i], pat, sizeof pat)) {
            s = ea_error_set(err, EA_EINTERNAL,
                             "pre-tokenizer '%s': pattern %u cannot be rewritten", pre, i);
            break;
        }
        int code;
        PCRE2_SIZE at;
        const uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opts, &code, &at, cc);
        if (!re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(code, msg, sizeof msg);
            bool oom = code == PCRE2_ERROR_HEAP_FAILED || code == PCRE2_ERROR_NOMEMORY;
            s = ea_error_set(err, oom ? EA_ENOMEM : EA_EINTERNAL,
                             "pre-tokenizer '%s': regex %u: %s at offset %zu", pre, i,
                             (const char *)msg, (size_t)at);
            break;
        }
        /* JIT is an optimisation only: without it the interpreter runs */
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
        t->re[t->n_re++] = re;
    }
    pcre2_compile_context_free(cc);
    t->pcre_gc = gc;
    return s;
}

void ea__pretok_release(ea_tokenizer *t)
{
    for (unsigned i = 0; i < t->n_re; i++)
        pcre2_code_free(t->re[i]);
    t->n_re = 0;
    pcre2_general_context_free(t->pcre_gc);
    t->pcre_gc = NULL;
}

/* ---- splitting ---------------------------------------------------------- */

ea_status ea__spans_push(struct ea__spans *s, uint32_t off, uint32_t len, struct ea_error *err)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct ea__span *v = ea_realloc(s->v, cap * sizeof *v);
        if (!v)
            return ea_error_set(err, EA_ENOMEM, "tokenizer: out of memory");
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n].off = off;
    s->v[s->n].len = len;
    s->n++;
    return EA_OK;
}

/* Next match of re in subject[0..len) at or after start: EA_OK with [*ms, *me),
 * EA_ENOTFOUND when there is none. */
static ea_status next_match(pcre2_code *re, const char *subject, size_t len, size_t start,
                            pcre2_match_data *md, size_t *ms, size_t *me, struct ea_error *err)
{
    int rc = pcre2_match(re, (PCRE2_SPTR)subject, len, start, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) /* very long runs: the interpreter uses the heap */
        rc = pcre2_match(re, (PCRE2_SPTR)subject, len, start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                         md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH)
        return EA_ENOTFOUND;
    if (rc < 0) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return ea_error_set(err, rc == PCRE2_ERROR_NOMEMORY ? EA_ENOMEM : EA_EINTERNAL,
                            "tokenizer: pre-tokenizer regex failed: %s", (const char *)msg);
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md); /* rc == 0: only pair 0 fits, fine */
    *ms = ov[0];
    *me = ov[1];
    return EA_OK;
}

/* Length of the UTF-8 character starting at s[0] (text is valid UTF-8). */
static size_t char_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

ea_status ea__pretok_split(const ea_tokenizer *t, const char *text, size_t len,
                           struct ea__spans *out, struct ea_error *err)
{
    out->n = 0;
    if (len == 0)
        return EA_OK;
    if (len > UINT32_MAX)
        return ea_error_set(err, EA_ETOOBIG, "tokenizer: text fragment too long");
    ea_status s = ea__spans_push(out, 0, (uint32_t)len, err);
    if (s)
        return s;
    struct ea__spans next = {0};
    pcre2_match_data *md = pcre2_match_data_create(1, t->pcre_gc);
    if (!md)
        return ea_error_set(err, EA_ENOMEM, "tokenizer: out of memory");
    for (unsigned r = 0; r < t->n_re && !s; r++) {
        next.n = 0;
        for (size_t k = 0; k < out->n && !s; k++) {
            const char *sub = text + out->v[k].off;
            size_t sl = out->v[k].len, pos = 0, last = 0, ms = 0, me = 0;
            while (pos <= sl) {
                ea_status m = next_match(t->re[r], sub, sl, pos, md, &ms, &me, err);
                if (m == EA_ENOTFOUND)
                    break;
                if (m) {
                    s = m;
                    break;
                }
                if (me == ms) { /* empty match: nothing to cut, step one character */
                    if (ms >= sl)
                        break;
                    pos = ms + char_len((unsigned char)sub[ms]);
                    continue;
                }
                if (ms > last && (s = ea__spans_push(&next, out->v[k].off + (uint32_t)last,
                                                     (uint32_t)(ms - last), err)))
                    break;
                if ((s = ea__spans_push(&next, out->v[k].off + (uint32_t)ms, (uint32_t)(me - ms),
                                        err)))
                    break;
                last = pos = me;
            }
            if (!s && last < sl)
                s = ea__spans_push(&next, out->v[k].off + (uint32_t)last, (uint32_t)(sl - last),
                                   err);
        }
        struct ea__spans tmp = *out;
        *out = next;
        next = tmp;
    }
    ea_free(next.v);
    pcre2_match_data_free(md);
    return s;
}
