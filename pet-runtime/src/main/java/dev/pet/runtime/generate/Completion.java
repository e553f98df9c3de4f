package dev.pet.runtime.generate;

/**
 * One prompt's generated text.
 *
 * @param text             the continuation (the prompt not included), cut before any stop string
 * @param promptTokens     tokens of the prompt as run (after any truncation)
 * @param completionTokens tokens generated
 * @param finishReason     {@code stop} (end-of-text token or a stop string) or {@code length} (max tokens or the
 *                         model's positions reached)
 */
public record Completion(String text, int promptTokens, int completionTokens, String finishReason) {
}
