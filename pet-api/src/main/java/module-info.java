/** The PET Runtime API and the service-provider interfaces that algorithm and model plugins implement. */
module dev.pet.api {
    requires transitive dev.pet.onnx;

    exports dev.pet.api;

    uses dev.pet.api.ModelProvider;
    uses dev.pet.api.PetAdapter;
}
