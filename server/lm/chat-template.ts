// ChatML, the chat format of Attune's own models (and of Qwen, SmolLM and many fine-tunes):
//
//     <|im_start|>system\n{content}<|im_end|>\n
//     <|im_start|>user\n{content}<|im_end|>\n
//     <|im_start|>assistant\n            ← generation prompt
//
// The byte-level tokenizers we write ship it as their chat_template, and a model that ships no
// template of its own is rendered with it. No BOS text is emitted.

export const CHATML_TEMPLATE =
  "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/** What ends a turn under ChatML: the end marker, or the next turn's start. */
export const CHATML_TURN_MARKERS: readonly string[] = ['<|im_end|>', '<|im_start|>'];

/** The special tokens of Attune's byte-level models: the document separator, then ChatML's two markers. */
export const CHATML_SPECIALS: readonly string[] = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
