// Phrase pools of the corpus generator, per style pole. Placeholders in braces are filled from a
// topic (see topics.ts): {n}/{N} name (lower/capitalized), {task}, {vs}, {def}, {tech}, {like},
// {t1}/{t2} terms, {is}/{Is}/{it} agreeing with the name, {utask} the task in the user's words, {mistake}/{Mistake}, {diff}/{Diff}, {cheer}, and per sentence {f}/{F} a fact,
// {s}/{S} a step, {s1}/{S1}/{s2} the first steps.
//
// The judge (judge.ts) must never import this file: it classifies by general features and word
// lists of its own, so that it still works when a trained model paraphrases.
import type { Expertise } from './style.ts';

type ByExpertise = Readonly<Record<Expertise, readonly string[]>>;

// ---- Expertise: how the content itself is said ----------------------------------------------

export const DEFINE: ByExpertise = {
  elementary: [
    '{N} {is} {def}.', 'In simple words, {n} {is} {def}.', 'Put simply, {n} {is} {def}.', '{N} {is} basically {def}.',
    'Here is the big idea: {n} {is} {def}.', 'The easy way to say it: {n} {is} {def}.', '{N} {is} just {def}.',
    'Simply put, {n} {is} {def}.', 'At heart, {n} {is} easy to grasp: {it} {is} {def}.',
  ],
  neutral: [
    '{N} {is} {def}.', '{N} can be described as {def}.', 'In short, {n} {is} {def}.', 'At its core, {n} {is} {def}.',
    'Most people describe {n} as {def}.', '{N} {is} usually understood as {def}.', 'Put briefly, {n} {is} {def}.',
    'In everyday terms, {n} {is} {def}.', 'The idea behind {n} is {def}.',
  ],
  expert: [
    'Technically, {n} {is} {tech}.', 'Formally, {n} can be defined as {tech}.', 'Strictly speaking, {n} {is} {tech}.',
    'In technical terms, {n} {is} {tech}.', '{N} {is} best characterized as {tech}.', 'By the standard definition, {n} {is} {tech}.',
    'Precisely stated, {n} {is} {tech}.', 'From a technical standpoint, {n} {is} {tech}.', 'Rigorously, {n} {is} {tech}.',
  ],
};

/** Elementary only: a whole sentence of analogy. */
export const ANALOGY: readonly string[] = [
  'Think of it like {like}.', "It's a bit like {like}.", 'Imagine {like}.', 'Picture {like}.',
  'You can think of {n} as {like}.', 'It works kind of like {like}.', 'A good way to see it: it is like {like}.',
  'It is a lot like {like}.', "It's just like {like}.", 'Try to picture {like}.', 'Think of {n} as {like}.',
];

/** Expert only: a whole sentence naming the technical concepts. */
export const TERMS: readonly string[] = [
  'The key variables are {t1} and {t2}.', 'Practitioners usually reason in terms of {t1} and {t2}.',
  'Two technical concepts matter most here: {t1} and {t2}.', 'The relevant terminology includes {t1} and {t2}.',
  'Much of the nuance lies in {t1}, and to a lesser degree in {t2}.', 'Any rigorous treatment accounts for {t1} and {t2}.',
  'Specialists track {t1} alongside {t2}.', 'Outcomes depend primarily on {t1}, with {t2} as a secondary factor.',
  'The dominant factors are {t1} and {t2}.', 'Precise analysis hinges on {t1} and {t2}.',
];

/** Expert only: technical concepts fused onto the end of a sentence. */
export const TERMS_CLAUSE: readonly string[] = [
  ', with {t1} as the governing variable', '; the key parameters are {t1} and {t2}', ', typically analyzed in terms of {t1}',
  '; practitioners track {t1} and {t2}', ', where {t1} and {t2} dominate the outcome', ', a point best framed in terms of {t1}',
  ' (the relevant concepts are {t1} and {t2})', '; note the role of {t1}', ', contingent primarily on {t1}',
];

export const FACT: ByExpertise = {
  elementary: [
    '{F}.', 'Here is a fun fact: {f}.', 'Here is the simple part: {f}.', 'Easy fact: {f}.', 'Just remember: {f}.',
    'Remember this: {f}.', 'Here is something neat: {f}.', 'The easy thing to know is that {f}.', 'A simple way to say it: {f}.',
  ],
  neutral: [
    '{F}.', 'Also, {f}.', 'Another point is that {f}.', 'It helps to know that {f}.', 'Keep in mind that {f}.',
    'One thing to know is that {f}.', 'On top of that, {f}.', 'It is also true that {f}.', 'Worth knowing: {f}.',
  ],
  expert: [
    'Typically, {f}.', 'In practice, {f}.', 'Empirically, {f}.', 'Under normal conditions, {f}.', 'As a general rule, {f}.',
    '{F}, although the magnitude varies with conditions.', '{F}, a well-documented effect.', 'Notably, {f}.',
    'It is well established that {f}.', '{F}; the underlying mechanism is reasonably well understood.',
  ],
};

export const EXAMPLE: ByExpertise = {
  elementary: ['Here is an example: {f}.', 'For example, {f}.', 'Here is an easy example: {f}.', 'A simple example: {f}.'],
  neutral: ['For example, {f}.', 'As an example, {f}.', 'One example: {f}.', 'To give an example, {f}.'],
  expert: ['By way of example, {f}.', 'For instance, {f}.', 'A representative example: {f}.', 'As an illustrative case, {f}.'],
};

/** The contrast with the comparison partner. */
export const CONTRAST: ByExpertise = {
  elementary: [
    'Here is the easy way to tell them apart: {diff}.', 'Think of it this way: {diff}.', 'The simple difference is this: {diff}.',
    'In simple words, {diff}.', 'Easy way to remember it: {diff}.', 'Put simply, {diff}.', 'The big idea is that {diff}.',
    'Here is the simple version: {diff}.', 'Basically, {diff}.',
  ],
  neutral: [
    'The main difference: {diff}.', '{N} and {vs} differ in one key way: {diff}.', 'In short, {diff}.',
    'Put side by side, {diff}.', 'Here is how they differ: {diff}.', 'The key contrast is that {diff}.',
    'The difference comes down to this: {diff}.', 'Compared directly, {diff}.', '{Diff}.',
  ],
  expert: [
    'The principal distinction is that {diff}.', 'Formally, the two differ as follows: {diff}.', 'Strictly speaking, {diff}.',
    'The technical distinction: {diff}.', 'Analytically, {diff}.', 'The key differentiating factor is this: {diff}.',
    'In precise terms, {diff}.', 'The distinction is conceptually clean: {diff}.', 'Technically, {diff}.',
  ],
};

/** A second sentence about the comparison partner. */
export const PARTNER: ByExpertise = {
  elementary: [
    'Lots of people mix up {n} and {vs}, and that is okay.', '{N} and {vs} are like cousins: related, but not the same.',
    'It is easy to mix up {n} and {vs}.', 'Think of {n} and {vs} as two different tools in a toolbox.',
    'Kids and grown-ups often mix up {n} and {vs}.', '{N} and {vs} are a bit like twins who act differently.',
    'Picture {n} and {vs} as two friends with different jobs.', 'Just remember that {n} and {vs} are not the same.',
  ],
  neutral: [
    'People sometimes mix up {n} and {vs}.', 'The right choice between {n} and {vs} depends on your goal.',
    'Knowing when to use {n} instead of {vs} saves trouble.', '{N} and {vs} are related, but not the same.',
    'Both {n} and {vs} have their place.', 'It is common to confuse {n} with {vs}.',
    'Which of {n} and {vs} fits better depends on the situation.', 'Many people ask about {n} and {vs} together.',
  ],
  expert: [
    'The choice between {n} and {vs} is context-dependent and should be driven by constraints.',
    'Conflating {n} with {vs} is a common conceptual error.', 'Selecting {n} over {vs} is fundamentally a trade-off.',
    'Rigorous comparison of {n} and {vs} requires controlling for conditions.',
    'In the technical literature, {n} and {vs} are treated as distinct categories.',
    'The optimal choice between {n} and {vs} depends on the operating constraints.',
    'Practitioners distinguish {n} from {vs} on functional grounds.', 'Formally, {n} and {vs} are not interchangeable.',
  ],
};

/** How-to in one sentence: the first two steps. */
export const STEPS_BRIEF: ByExpertise = {
  elementary: [
    'It is easy to {task}: {s1}, then {s2}.', 'To {task}, you just {s1} and then {s2}.',
    'Here is the simple way to {task}: {s1}, then {s2}.', 'Easy steps: {s1}, and then {s2}.',
    'Think of it like a recipe: {s1}, then {s2}.', 'The easy way to {task} is to {s1} and then {s2}.',
    'Simply {s1}, then {s2}.', 'Just two easy steps: {s1}, then {s2}.',
  ],
  neutral: [
    'To {task}, {s1}, then {s2}.', 'The basic steps to {task} are to {s1} and then {s2}.',
    '{S1}, then {s2}; that is the core of how to {task}.', 'If you want to {task}, {s1} and then {s2}.',
    'Here is how to {task}: {s1}, then {s2}.', 'The usual way to {task} is to {s1} and then {s2}.',
    'To {task}, start when you are ready: {s1}, then {s2}.', 'The main steps are to {s1} and then {s2}.',
  ],
  expert: [
    'The standard procedure to {task} is to {s1}, then {s2}, adjusting for conditions.',
    'Procedurally, to {task} one should {s1} and subsequently {s2}.',
    'The canonical sequence is to {s1} and then {s2}; execution quality typically matters more than speed.',
    'In practice, to {task} you {s1}, then {s2}, monitoring the result systematically.',
    'Methodically: {s1}, then {s2}, with attention to the relevant parameters.',
    'The optimal protocol to {task} begins by making sure to {s1}, then proceeds to {s2}.',
    'Operationally, the sequence is to {s1} and then {s2}, verifying each stage.',
    'The established method to {task} is to {s1} and then {s2}, controlling for variability.',
  ],
};

/** The opening line of a step-by-step answer. */
export const STEPS_INTRO: ByExpertise = {
  elementary: [
    'Here is the easy way to {task}.', 'Let me show you how to {task}, one small step at a time.',
    'To {task}, you only need a few easy steps.', 'It is simple to {task} if you go step by step.',
    'Think of this like a recipe for how to {task}.', 'Here are the simple steps to {task}.',
  ],
  neutral: [
    'Here is how to {task}.', 'This is how to {task}, step by step.', 'To {task}, follow these steps.',
    'There are a few steps to {task}.', 'Here is a step-by-step way to {task}.', 'These are the steps to {task}.',
  ],
  expert: [
    'The standard procedure to {task} proceeds in several discrete stages.',
    'A systematic approach to {task} involves the following sequence.',
    'Procedurally, the work needed to {task} breaks into discrete stages.',
    'The established protocol to {task} is best executed in order.',
    'To {task} reliably, the recommended procedure is as follows.', 'Methodically, one should {task} in defined stages.',
  ],
};

/** A single step suggested at the end of an explanation. */
export const FIRST_STEP: ByExpertise = {
  elementary: [
    'Here is an easy first step: {s1}.', 'An easy way to start is to {s1}.', 'The simple way to begin is to {s1}.',
    'A fun, easy start is to {s1}.', 'Start small and simple: {s1}.',
  ],
  neutral: ['A good first step is to {s1}.', 'To get started, {s1}.', 'If you want to try it, {s1} first.', 'One way to begin is to {s1}.', 'A practical start is to {s1}.'],
  expert: [
    'In practice, the recommended first step is to {s1}.', 'Operationally, one begins by making sure to {s1}.',
    'The standard initial step is to {s1}.', 'Procedurally, the first stage is to {s1}.', 'Methodically, begin by making sure to {s1}.',
  ],
};

/** The main piece of advice. */
export const TIP: ByExpertise = {
  elementary: [
    'The big tip is easy: {s}.', 'Here is a simple tip: {s}.', 'The easiest trick is to {s}.', 'Just remember one easy thing: {s}.',
    'My simple tip is to {s}.', 'Here is the big idea: {s}.', 'The simplest habit is to {s}.', 'One easy rule: {s}.',
  ],
  neutral: [
    'The most useful tip is to {s}.', 'My main advice is to {s}.', 'Above all, {s}.', 'A good habit is to {s}.',
    'It helps a lot to {s}.', 'Focus first on one thing: {s}.', 'The best place to start is to {s}.', 'One reliable habit is to {s}.',
  ],
  expert: [
    'The highest-leverage recommendation is to {s}.', 'Empirically, the most effective intervention is to {s}.',
    'Prioritize one practice: {s}; it typically yields the largest gain.', 'The evidence consistently favors one habit: {s}.',
    'From a technical standpoint, the key practice is to {s}.', 'The dominant factor under your control is to {s}.',
    'Systematically, the first priority is to {s}.', 'The optimal strategy, under most conditions, is to {s}.',
  ],
};

/** The first sentence of a follow-up answer ("Can you say more?"), about a further fact. */
export const MORE: ByExpertise = {
  elementary: [
    'Here is more, in simple words: {f}.', 'Sure, here is one more easy thing: {f}.', 'Here is another simple part: {f}.',
    'One more easy fact: {f}.', 'In simple words, there is more: {f}.', 'Here is the next simple idea: {f}.',
  ],
  neutral: ['Beyond the basics, {f}.', 'Going a bit deeper, {f}.', 'To add to that, {f}.', 'One more detail is that {f}.', 'Building on that, {f}.', 'There is more to it: {f}.'],
  expert: [
    'At a finer level of detail, {f}.', 'Going deeper, the technical literature notes that {f}.', 'A more technical point: {f}.',
    'Examined more rigorously, {f}.', 'At the mechanistic level, {f}.', 'A further, well-documented observation: {f}.',
  ],
};

/** A mistake, said in a neutral tone. Friendly and blunt tones use their own pools below. */
export const MISTAKE: ByExpertise = {
  elementary: [
    'A common oops is {mistake}.', 'Lots of people slip up by {mistake}.', 'One easy mistake is {mistake}.',
    'A silly slip is {mistake}.', 'Be careful about {mistake}; it is an easy slip.', 'Kids and grown-ups alike slip up by {mistake}.',
    'The easy thing to get wrong is {mistake}.', 'A simple mistake to skip is {mistake}.',
  ],
  neutral: [
    'A common mistake is {mistake}.', 'People often go astray by {mistake}.', 'One thing to avoid is {mistake}.',
    'A frequent problem is {mistake}.', 'Many beginners run into trouble by {mistake}.', 'It is best to avoid {mistake}.',
    'One pitfall is {mistake}.', 'Something to watch for is {mistake}.',
  ],
  expert: [
    'A frequent failure mode is {mistake}.', 'The most common error is {mistake}, which typically degrades the outcome.',
    'Practitioners often trace problems back to {mistake}.', 'A well-documented pitfall is {mistake}.',
    'Performance suffers most often from {mistake}.', 'The canonical error is {mistake}.',
    'Systematic problems usually stem from {mistake}.', 'One avoidable source of error is {mistake}.',
  ],
};

// ---- Steps: the tone decides the framing, expertise may add a qualifier ----------------------

export const STEP_FIRST = {
  friendly: ['A nice way to start is to {s}.', 'First, go ahead and {s}.', 'First up, {s}!', "Let's begin: {s}.", 'To kick things off, {s}.', 'Start off gently: {s}.'],
  neutral: ['First, {s}.', 'To begin, {s}.', 'Step one: {s}.', 'Start here: {s}.', 'The first step is to {s}.'],
  blunt: ['{S}.', 'Do this first: {s}.', 'Step one: {s}.', 'First: {s}.', '{S}, now.'],
} as const;
export const STEP_MIDDLE = {
  friendly: ['Then you can {s}.', 'Next, {s}, nice and steady.', 'After that, go ahead and {s}.', 'Next up, {s}!', 'Now you get to {s}.'],
  neutral: ['Next, {s}.', 'Then, {s}.', 'After that, {s}.', 'The next step is to {s}.', 'Now {s}.'],
  blunt: ['{S}.', 'Then {s}.', 'Next: {s}.', 'After that, {s}.', '{S}, no skipping.'],
} as const;
export const STEP_LAST = {
  friendly: ["Finally, {s}, and you're all set!", 'Last of all, {s}, and you did it!', 'To wrap up, {s}!', 'And finally, {s}!', 'Lastly, {s}, and give yourself a pat on the back!'],
  neutral: ['Finally, {s}.', 'Last, {s}.', 'To finish, {s}.', 'The last step is to {s}.', 'At the end, {s}.'],
  blunt: ['{S}.', 'Last: {s}.', 'Then {s}, done.', 'Finish: {s}.', 'Finally, {s}.'],
} as const;
/** Appended to an expert's step (final period removed first). */
export const EXPERT_STEP_QUALIFIER: readonly string[] = [
  ', which matters more than most people assume', '; precision at this stage pays off', ', adjusting for conditions',
  ', ideally with some measurement', '; this stage typically dominates the outcome', ', controlling for obvious variables',
  ', since errors here propagate downstream', ', verifying the result before proceeding',
];

/** Advice built from a step, by tone. */
export const TIP_STEP = {
  friendly: ["It's a great idea to {s}.", 'You might also {s}, it really helps!', 'A lovely habit is to {s}.', 'Try to {s} when you can, it makes a big difference!', "Remember to {s}, you'll be glad you did!"],
  neutral: ['It also helps to {s}.', 'Try to {s}.', 'Make it a habit to {s}.', 'Another good habit is to {s}.', 'It is worth taking time to {s}.'],
  blunt: ['{S}.', 'Always {s}.', '{S}, every time.', 'You have to {s}.', '{S}, no exceptions.'],
} as const;

// ---- Tone ------------------------------------------------------------------------------------

/** Friendly opening sentences. {task} variants are used only for how-to and advice. */
export const FRIENDLY_OPEN: readonly string[] = [
  'Great question!', 'Happy to help!', 'Oh, I love this topic!', 'Sure thing!', 'Glad you asked!', 'Of course, happy to explain!',
  'What a fun thing to ask about!', 'Ooh, good one!', 'Thanks for asking!', "I'd be glad to help with {n}!",
  'Happy to walk you through {n}!', '{N} is such a lovely topic!', 'Love this question!', 'Oh, this is a good one!',
  "Sure, I'd love to help!", 'What a great thing to be curious about!', "Let's dive in together!", "Absolutely, let's talk about {n}!",
  'Great choice of topic!', "I'm so glad you brought up {n}!", 'Hi there, happy to help with this!', 'Oh, how fun, {n}!',
  'What a lovely question about {n}!', 'I really enjoy talking about {n}!', 'Oh, fun, I was hoping someone would ask about {n}!',
  'Happy to chat about {n}!', 'Wonderful, {n} is one of my favorite topics!', 'Yay, a question about {n}!',
  'Glad to help you make sense of {n}!', 'Thanks for bringing up {n}!', 'Oh, I love talking about {cheer} topics like this!',
  'Great to hear you are curious about {n}!', 'Sure, happy to share what I know about {n}!', 'Ooh, {n}, what a nice topic!',
];
export const FRIENDLY_OPEN_TASK: readonly string[] = [
  "I'd love to help you {task}!", 'Happy to help you {task}!', "Great, let's {task} together!", 'Ooh, you want to {task}, love it!',
  'How exciting that you want to {task}!', 'Good for you for wanting to {task}!',
];
export const FRIENDLY_CLOSE: readonly string[] = [
  'Hope that helps!', 'Have fun with it!', "You've got this!", 'Feel free to ask more!', 'Enjoy!', "Good luck, you'll do great!",
  'Happy {cheer}!', 'Enjoy exploring {n}!', 'Let me know how it goes!', 'Have a wonderful time with {n}!',
  'I hope you enjoy it as much as I do!', 'Wishing you all the best with it!', 'Ask me anything else, anytime!',
  "You're going to do great!", 'Have fun, and enjoy the process!', 'Hope this makes things easier!', 'Glad I could help!',
  'Enjoy learning about {n}!', 'Have a lovely day!', 'Cheering you on!', 'Hope this was useful, and have fun!',
  'Have a great time with {n}!', 'Wishing you lots of fun with {n}!', 'Have fun with {n}, and enjoy every bit of it!',
  'Good luck with {n}, you have got this!', 'I hope {n} feels a lot clearer now!', 'Come back anytime with more questions about {n}!',
  'Enjoy, and happy {cheer}!', 'Take care, and have fun with {n}!', 'Hope you have a blast with {n}!', 'Best of luck with {n}!',
  'I am cheering for you and your {cheer}!', 'Thanks for asking about {n}, and enjoy!', 'Have a fantastic time, and happy {cheer}!',
  'You will be a pro at {n} in no time!',
];
/** Friendly lead-ins fused onto the first sentence when there is no room for a whole sentence. */
export const FRIENDLY_INLINE: readonly string[] = [
  'Happy to help: ', 'Good question: ', 'Sure thing: ', 'Glad you asked: ', 'Oh, nice one: ', 'Great question, and here is the answer: ',
  'Of course: ', 'Lovely question: ',
];
export const FRIENDLY_MISTAKE: readonly string[] = [
  'A gentle heads-up: try not to end up {mistake}.', "It's totally normal to slip into {mistake}, so no worries if it happens!",
  'A friendly tip: watch out for {mistake}!', "Lots of us end up {mistake} at first, and that's okay!",
  "Try to steer clear of {mistake}, and you'll be in great shape!", "Many people end up {mistake}, so you're in good company if you do!",
  "One thing I'd kindly suggest avoiding is {mistake}.", 'No worries if you catch yourself {mistake}; adjust and keep going!',
];

/** Blunt labels fused onto the start of the first sentence. */
export const BLUNT_PREFIX: readonly string[] = [
  'Bottom line: ', 'Short answer: ', 'Straight answer: ', 'Here it is: ', 'Facts: ', 'No fluff: ', 'Listen: ', 'Plainly: ',
  'The point: ', 'Cut to it: ', 'Key fact: ', 'Answer: ', 'Straight up: ', "Here's the deal: ", 'Blunt version: ',
  'Pay attention: ', 'No sugarcoating: ', 'Look: ',
];
export const BLUNT_CLOSE: readonly string[] = [
  "That's it.", 'Done.', 'Nothing more to it.', 'No shortcuts.', 'End of story.', 'No excuses.', 'Moving on.',
  "Don't overthink it.", "That's all you need.", 'Now go {task}.', 'Quit stalling and {task}.', "Don't complicate it.",
  'Get it right.', 'Figure out the rest yourself.', 'Next question.', "Do it properly or don't bother.",
  'Stop making it harder than it is.', 'Nobody needs more than that.', 'Take it or leave it.', 'Stop reading and {task}.',
  "Don't waste more time on this.", 'That covers {n}.', 'Enough about {n}.', 'No more to say about {n}.', 'Go {task} already.',
  "That's {n}, done.", "Don't ask again about {n}.", 'Learn it and move on.', "That's the whole story on {n}.",
  'Quit overthinking {n}.', 'Now {task} and stop asking.', "There's nothing else to {n}.", 'Deal with it.',
];
export const BLUNT_MISTAKE: readonly string[] = [
  'Stop {mistake}.', 'Quit {mistake}.', "{Mistake} is wrong, so don't.", "People keep {mistake}, and that's wrong.",
  'No {mistake}, ever.', 'Avoid {mistake}, period.', "Don't waste your time {mistake}.", '{Mistake} is a rookie error.',
  'Cut out {mistake} now.', '{Mistake} is a waste, so quit it.',
];

// ---- Prompts (user turns) --------------------------------------------------------------------

export const PROMPTS = {
  explain: [
    'What {is} {n}?', 'Can you explain {n}?', 'Tell me about {n}.', 'I keep hearing about {n}. What {is} {it}?', 'Explain {n} to me.',
    'What should I know about {n}?', 'Could you tell me what {n} {is}?', "I'm curious about {n}. Could you explain?",
    'Give me an overview of {n}.', 'Help me understand {n}.',
  ],
  compare: [
    "What's the difference between {n} and {vs}?", 'How is {n} different from {vs}?', 'Compare {n} and {vs}.',
    '{N} or {vs}: how do they differ?', 'Can you compare {n} with {vs}?', 'I mix up {n} and {vs}. What sets them apart?',
    '{Is} {n} the same thing as {vs}?', 'How do {n} and {vs} compare?', 'Explain how {n} differs from {vs}.',
  ],
  howto: [
    'How do I {utask}?', 'What are the steps to {utask}?', 'Walk me through how to {utask}.', 'I want to {utask}. Where do I start?',
    "What's the best way to {utask}?", 'Can you show me how to {utask}?', 'Give me steps to {utask}.', 'How should I {utask}?',
    "I've never tried to {utask}. How does it go?",
  ],
  advice: [
    'Any tips on {n}?', 'What advice do you have about {n}?', 'What mistakes do people make with {n}?',
    "I'm struggling to {utask}. Any advice?", 'What should I watch out for with {n}?', 'Do you have advice for someone trying to {utask}?',
    "What's your best tip if I want to {utask}?", "I'd like some advice about {n}.", 'How can I do better when I {utask}?',
  ],
} as const;

/** Second user turns of a follow-up, by what they ask for. */
export const FOLLOWUPS = {
  facts: ['Can you say more about {n}?', 'Could you go deeper on {n}?', 'What else should I know about {n}?', 'Interesting. Tell me more about {n}.', 'Can you expand on that?'],
  howto: ['Can you say more about how to {utask}?', 'So how would I actually {utask}?', 'What are the steps if I want to {utask}?', 'Could you explain how to {utask}?'],
  mistake: ['Can you say more about common mistakes?', 'What do people usually get wrong?', 'What should I avoid with {n}?', 'Are there mistakes I should watch for?'],
  compare: ['Can you say more about the comparison with {vs}?', 'How is that different from {vs}?', 'And how does it relate to {vs}?', 'Could you compare it with {vs}?'],
} as const;
