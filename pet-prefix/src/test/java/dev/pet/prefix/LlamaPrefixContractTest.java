package dev.pet.prefix;

/**
 * The prefix-tuning contract on llama-tiny (4 query heads, 2 key/value heads): PEFT-layout files carry prefixes per
 * key/value head ({@code token_dim} = kvHeads·headDim) and reproduce the float64 Llama PEFT reference.
 */
class LlamaPrefixContractTest extends PrefixContractTest {
    @Override
    protected PrefixFamily family() {
        return PrefixFamily.LLAMA;
    }
}
